package bench

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrMetricsFormat is returned for a /metrics line the parser cannot read.
var ErrMetricsFormat = errors.New("bench: malformed metrics line")

// Sample is one series of the Prometheus text format.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Metrics is one scrape of a node's /metrics.
type Metrics struct {
	Samples []Sample
}

// Sum adds up the series called name whose labels include every pair in
// match ("op", "put", "result", "ok", ...). Counters of a metric that was
// never touched are absent, so a missing series sums to 0.
func (m *Metrics) Sum(name string, match ...string) float64 {
	var total float64
next:
	for _, s := range m.Samples {
		if s.Name != name {
			continue
		}
		for i := 0; i+1 < len(match); i += 2 {
			if s.Labels[match[i]] != match[i+1] {
				continue next
			}
		}
		total += s.Value
	}
	return total
}

// Scrape fetches and parses http://addr/metrics.
func Scrape(ctx context.Context, client *http.Client, addr string) (*Metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, fmt.Errorf("bench: scrape %s: %w", addr, err)
	}
	// Plain text, not the protobuf or OpenMetrics formats promhttp can also
	// serve.
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("bench: scrape %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("bench: scrape %s: %s", addr, resp.Status)
	}
	m, err := ParseMetrics(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("bench: scrape %s: %w", addr, err)
	}
	return m, nil
}

// ParseMetrics reads the Prometheus text exposition format: comment lines
// are skipped, every other line is name{label="value",...} value
// [timestamp].
func ParseMetrics(r io.Reader) (*Metrics, error) {
	m := &Metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		s, err := parseSample(text)
		if err != nil {
			return nil, fmt.Errorf("line %d %q: %w", line, text, err)
		}
		m.Samples = append(m.Samples, s)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return m, nil
}

func parseSample(text string) (Sample, error) {
	s := Sample{Labels: map[string]string{}}
	i := strings.IndexAny(text, "{ \t")
	if i <= 0 {
		return s, ErrMetricsFormat
	}
	s.Name, text = text[:i], text[i:]
	if text[0] == '{' {
		rest, err := parseLabels(text[1:], s.Labels)
		if err != nil {
			return s, err
		}
		text = rest
	}
	fields := strings.Fields(text)
	if len(fields) < 1 || len(fields) > 2 {
		return s, ErrMetricsFormat
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, fmt.Errorf("%w: value: %v", ErrMetricsFormat, err)
	}
	s.Value = v
	return s, nil
}

// parseLabels reads label pairs up to the closing brace and returns the
// text after it.
func parseLabels(text string, into map[string]string) (string, error) {
	for {
		text = strings.TrimLeft(text, " \t,")
		if text == "" {
			return "", fmt.Errorf("%w: unterminated labels", ErrMetricsFormat)
		}
		if text[0] == '}' {
			return text[1:], nil
		}
		eq := strings.IndexByte(text, '=')
		if eq <= 0 || eq+1 >= len(text) || text[eq+1] != '"' {
			return "", fmt.Errorf("%w: label", ErrMetricsFormat)
		}
		name := strings.TrimSpace(text[:eq])
		var val strings.Builder
		j := eq + 2
		for ; j < len(text) && text[j] != '"'; j++ {
			c := text[j]
			if c == '\\' && j+1 < len(text) {
				j++
				switch text[j] {
				case 'n':
					c = '\n'
				default:
					c = text[j] // \\ and \"
				}
			}
			val.WriteByte(c)
		}
		if j >= len(text) {
			return "", fmt.Errorf("%w: unterminated label value", ErrMetricsFormat)
		}
		into[name] = val.String()
		text = text[j+1:]
	}
}

// HistQuantile estimates the q quantile of histogram name over what was
// observed between before and after (two scrapes of one node), from the
// cumulative _bucket series whose labels include match: the upper bound of
// the first bucket holding the q-th observation (the +Inf bucket reports
// the largest finite bound). It returns 0 without observations.
func HistQuantile(before, after *Metrics, name string, q float64, match ...string) float64 {
	type bucket struct{ le, n float64 }
	var bs []bucket
	bounds := map[float64]bool{}
	for _, s := range after.Samples {
		if s.Name != name+"_bucket" {
			continue
		}
		le, err := strconv.ParseFloat(s.Labels["le"], 64)
		if err != nil || bounds[le] {
			continue
		}
		bounds[le] = true
		m := append([]string{"le", s.Labels["le"]}, match...)
		n := after.Sum(name+"_bucket", m...)
		if before != nil {
			n -= before.Sum(name+"_bucket", m...)
		}
		bs = append(bs, bucket{le, n})
	}
	if len(bs) == 0 {
		return 0
	}
	slices.SortFunc(bs, func(a, b bucket) int { return cmp.Compare(a.le, b.le) })
	total := bs[len(bs)-1].n
	if total <= 0 {
		return 0
	}
	for i, b := range bs {
		if b.n >= q*total {
			if math.IsInf(b.le, 1) && i > 0 {
				return bs[i-1].le
			}
			return b.le
		}
	}
	return bs[len(bs)-1].le
}
