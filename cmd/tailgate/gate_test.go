package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/tailgate-ci/tailgate/internal/rules"
	perfrules "github.com/tailgate-ci/tailgate/perf-rules"
)

func TestParseFixList(t *testing.T) {
	r, err := rules.Parse(perfrules.BidderName, perfrules.Bidder)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"all", r.FixNames()},
		{"gc", []string{"gc"}},
		{" locks , mlock", []string{"locks", "mlock"}},
	} {
		got, err := parseFixList("gate", "--head-fixes", tc.in, r)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	if len(r.FixNames()) != 4 {
		t.Fatalf("the bidder's rules have fixes %v, want the four", r.FixNames())
	}
	_, err = parseFixList("gate", "--head-fixes", "gc,turbo", r)
	if exitCode(err) != ExitUsage || !strings.Contains(err.Error(), `--head-fixes: unknown fix "turbo"`) {
		t.Fatalf("unknown fix: %v (exit %d)", err, exitCode(err))
	}
	noFixes := *r
	noFixes.Fixes = nil
	if _, err := parseFixList("gate", "--base-fixes", "all", &noFixes); exitCode(err) != ExitUsage || !strings.Contains(err.Error(), "declares no fixes") {
		t.Fatalf("all without fixes: %v", err)
	}
}
