package latency

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// HlogWriter writes an HdrHistogram interval log (.hlog, format 1.3), the
// file jHiccup, HdrHistogram's HistogramLogProcessor and hdrhistogram-go's
// HistogramLogReader read. Each interval line holds one histogram (one load
// round) in the V2 compressed encoding, optionally tagged (e.g. "base" or
// "head").
//
// The header lines come from hdrhistogram-go's HistogramLogWriter. Interval
// lines are formatted here with the same layout because the library's
// writer hard-codes an Interval_Max ratio of 1e6 (ns to ms) and hides the
// option that changes it; our values are microseconds, so the max column is
// written in milliseconds (ratio 1000). Readers take the values from the
// payload, which is in microseconds: with HistogramLogProcessor use
// -outputValueUnitRatio 1000 to print milliseconds.
type HlogWriter struct {
	w      io.Writer
	lw     *hdrhistogram.HistogramLogWriter
	baseMs int64
}

// NewHlogWriter writes the log header (format version, an optional
// comment, StartTime and BaseTime) to w and returns a writer whose interval
// timestamps are relative to start, truncated to the second because the
// BaseTime header line only carries whole seconds.
func NewHlogWriter(w io.Writer, start time.Time, comment string) (*HlogWriter, error) {
	lw := hdrhistogram.NewHistogramLogWriter(w)
	hw := &HlogWriter{w: w, lw: lw, baseMs: start.UnixMilli() / 1000 * 1000}
	lw.SetBaseTime(hw.baseMs)
	if err := lw.OutputLogFormatVersion(); err != nil {
		return nil, fmt.Errorf("write hlog header: %w", err)
	}
	if comment != "" {
		for _, line := range strings.Split(comment, "\n") {
			if err := lw.OutputComment(line); err != nil {
				return nil, fmt.Errorf("write hlog header: %w", err)
			}
		}
	}
	if err := lw.OutputComment("[values in microseconds; Interval_Max in milliseconds]"); err != nil {
		return nil, fmt.Errorf("write hlog header: %w", err)
	}
	if err := lw.OutputStartTime(start.UnixMilli()); err != nil {
		return nil, fmt.Errorf("write hlog header: %w", err)
	}
	if err := lw.OutputBaseTime(hw.baseMs); err != nil {
		return nil, fmt.Errorf("write hlog header: %w", err)
	}
	if err := lw.OutputLegend(); err != nil {
		return nil, fmt.Errorf("write hlog header: %w", err)
	}
	return hw, nil
}

// WriteInterval appends one interval line for h covering [start, end),
// tagged with tag if it is not empty. A tag may not contain commas,
// whitespace or line breaks (the format's separators).
func (hw *HlogWriter) WriteInterval(h *hdrhistogram.Histogram, start, end time.Time, tag string) error {
	if strings.ContainsAny(tag, ", \t\r\n") {
		return fmt.Errorf("write hlog interval: tag %q contains a comma, space or line break", tag)
	}
	if end.Before(start) {
		return errors.New("write hlog interval: end before start")
	}
	payload, err := Encode(h)
	if err != nil {
		return fmt.Errorf("write hlog interval: %w", err)
	}
	tagStr := ""
	if tag != "" {
		tagStr = "Tag=" + tag + ","
	}
	startSec := float64(start.UnixMilli()-hw.baseMs) / 1000
	lenSec := float64(end.UnixMilli()-start.UnixMilli()) / 1000
	maxMs := 0.0
	if h.TotalCount() > 0 {
		maxMs = float64(h.Max()) / 1000
	}
	if _, err := fmt.Fprintf(hw.w, "%s%f,%f,%f,%s\n", tagStr, startSec, lenSec, maxMs, payload); err != nil {
		return fmt.Errorf("write hlog interval: %w", err)
	}
	return nil
}

// ReadHlog reads every interval histogram of an .hlog with hdrhistogram-go's
// HistogramLogReader. Each histogram carries its tag and absolute start and
// end times (ms since the epoch).
func ReadHlog(r io.Reader) ([]*hdrhistogram.Histogram, error) {
	lr := hdrhistogram.NewHistogramLogReader(r)
	var out []*hdrhistogram.Histogram
	for {
		h, err := lr.NextIntervalHistogram()
		if err != nil {
			return nil, fmt.Errorf("read hlog interval %d: %w", len(out)+1, err)
		}
		if h == nil {
			return out, nil
		}
		out = append(out, h)
	}
}
