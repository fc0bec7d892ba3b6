module github.com/tailgate-ci/tailgate

go 1.26.8

require (
	github.com/HdrHistogram/hdrhistogram-go v1.4.0
	github.com/cilium/ebpf v0.22.0
	github.com/google/go-github/v60 v60.0.0
	github.com/google/pprof v0.0.0-20250903194437-c28834ac2320
	github.com/prebid/openrtb/v20 v20.3.0
	github.com/sethvargo/go-githubactions v1.3.0
	github.com/tsenart/vegeta/v12 v12.13.0
	golang.org/x/arch v0.33.0
	golang.org/x/sys v0.50.0
	gopkg.in/yaml.v3 v3.0.1
)

require (
	github.com/google/go-querystring v1.1.0 // indirect
	github.com/influxdata/tdigest v0.0.1 // indirect
	github.com/josharian/intern v1.0.0 // indirect
	github.com/mailru/easyjson v0.7.7 // indirect
	github.com/rs/dnscache v0.0.0-20230804202142-fc85eb664529 // indirect
	golang.org/x/net v0.48.0 // indirect
	golang.org/x/sync v0.20.0 // indirect
	golang.org/x/text v0.32.0 // indirect
)
