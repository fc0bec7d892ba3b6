package experiment

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tailgate-ci/tailgate/internal/gate"
)

// SchemaVersion is the version of the result document this package writes.
// Bump it when a field changes meaning or is removed; adding a field does
// not need a bump (readers ignore unknown fields).
const SchemaVersion = 1

// Kind says what produced a document.
type Kind string

// Document kinds.
const (
	KindGate       Kind = "gate"
	KindExperiment Kind = "experiment"
)

// Ref is a built revision of the service.
type Ref struct {
	Name   string `json:"name"`   // as given: branch, tag, "HEAD~1"
	Commit string `json:"commit"` // resolved full hash
	// Fixes are the rules' fixes the arm ran with (tailgate gate
	// --base-fixes/--head-fixes); none for the service as built.
	Fixes []string `json:"fixes,omitempty"`
}

// RoundRecord is one round as run: its summary, load figures and, when the
// runner keeps it, the histogram (internal/latency.Encode: HdrHistogram V2
// compressed, base64).
type RoundRecord struct {
	gate.RoundSummary
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	// Timeouts are the errors that were client timeouts (recorded at
	// their latency, a lower bound).
	Timeouts int64 `json:"timeouts,omitempty"`
	// Attempt is the slot's attempt (0: the first; see Document.Reruns).
	Attempt int    `json:"attempt,omitempty"`
	Hist    string `json:"hist,omitempty"`
	// LagFreeHist is, for a round invalid only for the load generator's
	// lag (LagBounded), the same requests' latencies from their actual
	// send times (the gate's lag bracket).
	LagFreeHist string `json:"hist_lag_free,omitempty"`
}

// Document is the versioned JSON result of `tailgate gate` and `tailgate
// experiment`, read by the report and the action.
type Document struct {
	SchemaVersion int       `json:"schema_version"`
	Kind          Kind      `json:"kind"`
	Tool          string    `json:"tool,omitempty"` // e.g. "tailgate v0.1.0"
	Service       string    `json:"service,omitempty"`
	Base          *Ref      `json:"base,omitempty"`
	Head          *Ref      `json:"head,omitempty"`
	Started       time.Time `json:"started,omitzero"`
	Finished      time.Time `json:"finished,omitzero"`
	// Rate is the offered load in requests per second.
	Rate float64 `json:"rate,omitempty"`
	// ScheduleSeed is the seed the schedule was drawn with (recorded so
	// the run can be repeated); Schedule is the planned rounds, Rounds the
	// rounds that ran (a gate may stop before the end of the schedule).
	ScheduleSeed int64         `json:"schedule_seed"`
	Schedule     []Slot        `json:"schedule,omitempty"`
	Rounds       []RoundRecord `json:"rounds"`
	// Reruns are the attempts discarded because they were invalid only for
	// the load generator's own lag; the slot ran again (Rounds holds its
	// last attempt). Kept as measured, histograms included.
	Reruns []RoundRecord `json:"reruns,omitempty"`
	// Gate is set for KindGate, Attribution for KindExperiment.
	Gate        *gate.Result `json:"gate,omitempty"`
	Attribution *Attribution `json:"attribution,omitempty"`
	Notes       []string     `json:"notes,omitempty"`
}

// ErrSchemaVersion is returned for a document of an unknown schema version.
var ErrSchemaVersion = errors.New("unsupported schema_version")

// Validate checks the fields a reader relies on.
func (d *Document) Validate() error {
	var errs []error
	switch {
	case d.SchemaVersion == 0:
		errs = append(errs, fmt.Errorf("schema_version: missing: %w", ErrSchemaVersion))
	case d.SchemaVersion > SchemaVersion || d.SchemaVersion < 0:
		errs = append(errs, fmt.Errorf("schema_version: %d, this tailgate reads up to %d: %w", d.SchemaVersion, SchemaVersion, ErrSchemaVersion))
	}
	switch d.Kind {
	case KindGate:
		if d.Gate == nil {
			errs = append(errs, errors.New("gate: missing in a gate document"))
		}
	case KindExperiment:
		if d.Attribution == nil {
			errs = append(errs, errors.New("attribution: missing in an experiment document"))
		}
	default:
		errs = append(errs, fmt.Errorf("kind: %q, want %q or %q", d.Kind, KindGate, KindExperiment))
	}
	return errors.Join(errs...)
}

// Marshal stamps the current schema version and encodes d as indented JSON.
func (d *Document) Marshal() ([]byte, error) {
	c := *d
	c.SchemaVersion = SchemaVersion
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("result document: %w", err)
	}
	b, err := json.MarshalIndent(&c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("result document: %w", err)
	}
	return append(b, '\n'), nil
}

// ParseDocument decodes and validates a result document.
func ParseDocument(data []byte) (*Document, error) {
	var d Document
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("result document: %w", err)
	}
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("result document: %w", err)
	}
	return &d, nil
}
