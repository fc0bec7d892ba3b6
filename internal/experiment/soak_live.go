package experiment

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// ProcSampler samples a running service: VmRSS from /proc/PID/status and,
// when metricsURL is set, the Go runtime's GC figures from its Prometheus
// text endpoint (go_gc_cycles_total, go_gc_heap_live_bytes,
// go_cpu_classes_gc_total_cpu_seconds: runtime/metrics names as the bidder
// exports them). Unknown figures are -1.
func ProcSampler(pid int, metricsURL string) func(ctx context.Context) (Sample, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	return func(ctx context.Context) (Sample, error) {
		s := Sample{GCCycles: -1, HeapLiveBytes: -1, GCCPUSeconds: -1}
		var errs []error
		if rss, err := vmRSS(pid); err != nil {
			errs = append(errs, err)
		} else {
			s.RSSBytes = rss
		}
		if metricsURL != "" {
			m, err := scrape(ctx, client, metricsURL)
			if err != nil {
				errs = append(errs, err)
			}
			get := func(name string) float64 {
				if v, ok := m[name]; ok {
					return v
				}
				return -1
			}
			s.GCCycles = get("go_gc_cycles_total")
			s.HeapLiveBytes = get("go_gc_heap_live_bytes")
			s.GCCPUSeconds = get("go_cpu_classes_gc_total_cpu_seconds")
		}
		return s, errors.Join(errs...)
	}
}

func vmRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			fs := strings.Fields(v) // "123456 kB"
			if len(fs) == 2 && fs[1] == "kB" {
				kb, err := strconv.ParseInt(fs[0], 10, 64)
				if err == nil {
					return kb << 10, nil
				}
			}
			return 0, fmt.Errorf("/proc/%d/status: bad VmRSS line %q", pid, sc.Text())
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// scrape reads the label-less samples of a Prometheus text exposition.
func scrape(ctx context.Context, c *http.Client, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("scrape metrics: %s: %s", url, resp.Status)
	}
	return parseMetrics(bufio.NewScanner(resp.Body))
}

func parseMetrics(sc *bufio.Scanner) (map[string]float64, error) {
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	out := map[string]float64{}
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || strings.Contains(line, "{") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil {
			out[f[0]] = v
		}
	}
	return out, sc.Err()
}
