package flame

import (
	"fmt"
	"io"
	"math"

	"github.com/google/pprof/profile"
)

// PprofOptions control the export to pprof. The zero value derives the
// sample type from the profile's unit and keeps values unscaled.
type PprofOptions struct {
	// SampleType and SampleUnit name the single value of every sample,
	// e.g. "samples"/"count" or "offcpu"/"nanoseconds". Defaults follow
	// the profile's unit: "samples" gives samples/count, "nanoseconds"
	// gives time/nanoseconds, anything else gives value/<unit>.
	SampleType, SampleUnit string
	// Scale multiplies values before they are rounded to pprof's
	// integers; normalized profiles need one (e.g. 1e6 with SampleUnit
	// "ppm" for a per-total profile). 0 means 1.
	Scale float64
	// Comments are stored in the profile and shown by `pprof -comments`.
	Comments []string
	// TimeNanos and DurationNanos are the wall-clock start and length of
	// the collection, when known.
	TimeNanos, DurationNanos int64
}

// ToPprof converts p into a pprof profile with one sample per folded stack,
// one function and one location per distinct frame name, and a single
// mapping marked as symbolized so pprof does not try to symbolize it.
// Stacks whose scaled value rounds to zero are dropped.
func ToPprof(p *Profile, o PprofOptions) (*profile.Profile, error) {
	unit := p.UnitOrDefault()
	if o.SampleType == "" {
		switch unit {
		case "samples":
			o.SampleType, o.SampleUnit = "samples", "count"
		case "nanoseconds":
			o.SampleType, o.SampleUnit = "time", "nanoseconds"
		default:
			o.SampleType, o.SampleUnit = "value", unit
		}
	}
	if o.SampleUnit == "" {
		o.SampleUnit = "count"
	}
	if o.Scale == 0 {
		o.Scale = 1
	}
	if o.Scale < 0 || math.IsNaN(o.Scale) || math.IsInf(o.Scale, 0) {
		return nil, fmt.Errorf("export pprof: bad scale %v", o.Scale)
	}
	vt := &profile.ValueType{Type: o.SampleType, Unit: o.SampleUnit}
	out := &profile.Profile{
		SampleType:        []*profile.ValueType{vt},
		DefaultSampleType: o.SampleType,
		PeriodType:        &profile.ValueType{Type: o.SampleType, Unit: o.SampleUnit},
		Period:            1,
		Comments:          o.Comments,
		TimeNanos:         o.TimeNanos,
		DurationNanos:     o.DurationNanos,
	}
	m := &profile.Mapping{ID: 1, File: "tailgate-folded", HasFunctions: true}
	out.Mapping = []*profile.Mapping{m}
	locs := make(map[string]*profile.Location)
	loc := func(name string) *profile.Location {
		if l, ok := locs[name]; ok {
			return l
		}
		id := uint64(len(out.Function) + 1)
		f := &profile.Function{ID: id, Name: name, SystemName: name}
		l := &profile.Location{ID: id, Mapping: m, Line: []profile.Line{{Function: f}}}
		out.Function = append(out.Function, f)
		out.Location = append(out.Location, l)
		locs[name] = l
		return l
	}
	for _, k := range p.sortedKeys() {
		v := math.Round(p.Stacks[k] * o.Scale)
		if v == 0 {
			continue
		}
		if v > math.MaxInt64/2 {
			return nil, fmt.Errorf("export pprof: stack %q: value %v overflows int64", k, v)
		}
		frames := SplitStack(k)
		s := &profile.Sample{Value: []int64{int64(v)}, Location: make([]*profile.Location, len(frames))}
		for i, f := range frames { // pprof stores the leaf first
			s.Location[len(frames)-1-i] = loc(f)
		}
		out.Sample = append(out.Sample, s)
	}
	if err := out.CheckValid(); err != nil {
		return nil, fmt.Errorf("export pprof: %w", err)
	}
	return out, nil
}

// WritePprof writes p as a gzipped pprof protobuf, the format `go tool
// pprof` reads (also as -diff_base).
func WritePprof(w io.Writer, p *Profile, o PprofOptions) error {
	pp, err := ToPprof(p, o)
	if err != nil {
		return err
	}
	if err := pp.Write(w); err != nil {
		return fmt.Errorf("write pprof: %w", err)
	}
	return nil
}

// FromPprof folds a pprof profile's sample values of the given index back
// into folded stacks, root first, using function names (inlined frames
// expanded). It lets pprof files from elsewhere (net/http/pprof, perf
// converted by pprof) feed the flame graphs.
func FromPprof(pp *profile.Profile, index int) (*Profile, error) {
	if index < 0 || index >= len(pp.SampleType) {
		return nil, fmt.Errorf("import pprof: sample index %d out of range (profile has %d types)", index, len(pp.SampleType))
	}
	p := New(pp.SampleType[index].Unit)
	if p.Unit == "count" {
		p.Unit = DefaultUnit
	}
	var frames []string
	for _, s := range pp.Sample {
		frames = frames[:0]
		for i := len(s.Location) - 1; i >= 0; i-- {
			l := s.Location[i]
			if len(l.Line) == 0 {
				frames = append(frames, fmt.Sprintf("0x%x", l.Address))
				continue
			}
			for j := len(l.Line) - 1; j >= 0; j-- { // Line[0] is the innermost inlined call
				name := "[unknown]"
				if f := l.Line[j].Function; f != nil && f.Name != "" {
					name = f.Name
				}
				frames = append(frames, name)
			}
		}
		if v := s.Value[index]; v > 0 && len(frames) > 0 {
			p.Add(frames, float64(v))
		}
	}
	return p, nil
}
