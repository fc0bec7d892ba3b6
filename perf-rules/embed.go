// Package perfrules embeds the default perf-rules files, so `tailgate run`
// works without a --rules flag. The files are data; their schema is
// documented in README.md and parsed by internal/rules.
package perfrules

import _ "embed"

// BidderName is the path the default bidder rules are reported under.
const BidderName = "perf-rules/bidder.yaml"

// Bidder is perf-rules/bidder.yaml, the default rules for the bundled
// bidder.
//
//go:embed bidder.yaml
var Bidder []byte
