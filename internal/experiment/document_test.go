package experiment

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tailgate-ci/tailgate/internal/gate"
)

func TestDocumentRoundTrip(t *testing.T) {
	rounds := simulate(t, ModeStandard, 6, 2000, 0, 9)
	att, err := Attribute(AttributionConfig{Fixes: fixes, Bootstrap: 200}, rounds)
	if err != nil {
		t.Fatal(err)
	}
	var gr []gate.Round
	for _, r := range rounds {
		switch r.Arm {
		case Baseline:
			r.Arm = gate.ArmBase
		case "gc":
			r.Arm = gate.ArmHead
		default:
			continue
		}
		gr = append(gr, r)
	}
	res := gate.Evaluate(gate.Config{MinSamplesPerArm: 1000}, gr)
	slots, _ := GateSchedule(gate.Config{}, 5)
	started := time.Date(2026, 11, 26, 1, 2, 3, 0, time.UTC)
	docs := []*Document{
		{
			Kind: KindGate, Tool: "tailgate test", Service: "bidder",
			Base: &Ref{Name: "main", Commit: strings.Repeat("a", 40)}, Head: &Ref{Name: "pr", Commit: strings.Repeat("b", 40)},
			Started: started, Finished: started.Add(5 * time.Minute), Rate: 1500,
			ScheduleSeed: 5, Schedule: slots,
			Rounds: []RoundRecord{{RoundSummary: res.Rounds[0], Requests: 12000, Errors: 2, Hist: "HISTFAAAA"}},
			Gate:   &res, Notes: []string{"profiles unavailable: not root"},
		},
		{Kind: KindExperiment, ScheduleSeed: 9, Attribution: att, Rounds: []RoundRecord{}},
	}
	for _, d := range docs {
		t.Run(string(d.Kind), func(t *testing.T) {
			data, err := d.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(data), `"schema_version": 1`) {
				t.Errorf("no schema_version in\n%.300s", data)
			}
			back, err := ParseDocument(data)
			if err != nil {
				t.Fatal(err)
			}
			want := *d
			want.SchemaVersion = SchemaVersion
			if !reflect.DeepEqual(back, &want) {
				t.Errorf("round trip changed the document:\n got %+v\nwant %+v", back, &want)
			}
		})
	}
}

func TestParseDocumentErrors(t *testing.T) {
	tests := []struct {
		name, json, want string
		is               error
	}{
		{"not json", `{`, "unexpected end", nil},
		{"no version", `{"kind":"gate","gate":{}}`, "schema_version: missing", ErrSchemaVersion},
		{"newer version", `{"schema_version":2,"kind":"gate","gate":{}}`, "schema_version: 2, this tailgate reads up to 1", ErrSchemaVersion},
		{"bad kind", `{"schema_version":1,"kind":"soak"}`, `kind: "soak"`, nil},
		{"gate without result", `{"schema_version":1,"kind":"gate"}`, "gate: missing", nil},
		{"experiment without attribution", `{"schema_version":1,"kind":"experiment"}`, "attribution: missing", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDocument([]byte(tt.json))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
		})
	}
	if _, err := (&Document{Kind: "x"}).Marshal(); err == nil {
		t.Error("Marshal accepted an invalid document")
	}
}
