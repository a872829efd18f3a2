package query

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Request is one read of a topic as a table: the parameters the HTTP
// endpoint takes in its query string and the Flight server in its JSON
// command.
type Request struct {
	Topic string
	// Partitions lists the partitions to read; empty means all of them.
	Partitions []int32
	Range      Range
	// Decode is "" for the default schema or "json" to add typed columns
	// inferred from JSON values (see InferJSON).
	Decode string
}

// ParseTime parses a time bound given as RFC 3339 (2026-01-02T15:04:05Z,
// fractional seconds allowed) or as integer milliseconds since the Unix
// epoch, the unit of Kafka timestamps.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		// Kafka timestamps are ms; keep within what time.Time holds
		// exactly in ms so UnixMilli round-trips.
		if ms < -(1<<62)/int64(time.Millisecond) || ms > (1<<62)/int64(time.Millisecond) {
			return time.Time{}, fmt.Errorf("%w: time %q out of range", ErrInvalidRange, s)
		}
		return time.UnixMilli(ms).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: time %q is neither RFC 3339 (2006-01-02T15:04:05Z) nor milliseconds since the epoch", ErrInvalidRange, s)
	}
	return t, nil
}

// parseOffset parses a non-negative offset parameter.
func parseOffset(name, s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: %s=%q is not a non-negative offset", ErrInvalidRange, name, s)
	}
	return n, nil
}

// parsePartitions parses "3" or "0,2,5" into partition numbers.
func parsePartitions(s string) ([]int32, error) {
	var out []int32
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 32)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%w: partition=%q is not a non-negative partition number (or a comma-separated list)", ErrInvalidRange, s)
		}
		out = append(out, int32(n))
	}
	return out, nil
}

// knownParams are the query parameters ParseQuery understands; any other is
// refused so a misspelt bound does not silently read the whole topic.
var knownParams = map[string]bool{
	"partition": true, "from": true, "to": true, "start_time": true, "end_time": true,
	"batch_rows": true, "decode": true,
}

// ParseQuery reads partition, from, to, start_time and end_time from an
// HTTP query string into a Request for topic. Every error wraps
// ErrInvalidRange and reads well enough to show to a person.
func ParseQuery(topic string, q url.Values) (Request, error) {
	req := Request{Topic: topic}
	for k, v := range q {
		if !knownParams[k] {
			return req, fmt.Errorf("%w: unknown parameter %q (want partition, from, to, start_time, end_time, decode, batch_rows)", ErrInvalidRange, k)
		}
		if len(v) != 1 {
			return req, fmt.Errorf("%w: parameter %q given %d times", ErrInvalidRange, k, len(v))
		}
	}
	var err error
	if s, ok := single(q, "partition"); ok {
		if req.Partitions, err = parsePartitions(s); err != nil {
			return req, err
		}
	}
	if s, ok := single(q, "from"); ok {
		if req.Range.From, err = parseOffset("from", s); err != nil {
			return req, err
		}
	}
	if s, ok := single(q, "to"); ok {
		if req.Range.To, err = parseOffset("to", s); err != nil {
			return req, err
		}
		if req.Range.To == 0 {
			return req, fmt.Errorf("%w: to=0 selects nothing (to is exclusive)", ErrInvalidRange)
		}
	}
	if s, ok := single(q, "start_time"); ok {
		if req.Range.StartTime, err = ParseTime(s); err != nil {
			return req, fmt.Errorf("start_time: %w", err)
		}
	}
	if s, ok := single(q, "end_time"); ok {
		if req.Range.EndTime, err = ParseTime(s); err != nil {
			return req, fmt.Errorf("end_time: %w", err)
		}
	}
	if s, ok := single(q, "decode"); ok {
		if req.Decode, err = parseDecode(s); err != nil {
			return req, err
		}
	}
	return req, req.Range.Validate()
}

// parseDecode checks a decode parameter.
func parseDecode(s string) (string, error) {
	switch s {
	case "", "none":
		return "", nil
	case "json":
		return s, nil
	}
	return "", fmt.Errorf("%w: decode=%q: want json (or none)", ErrInvalidRange, s)
}

// batchRows reads the optional batch_rows parameter (1..1M).
func batchRows(q url.Values) (int, error) {
	s, ok := single(q, "batch_rows")
	if !ok {
		return 0, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 || n > 1<<20 {
		return 0, fmt.Errorf("%w: batch_rows=%q is not a number from 1 to %d", ErrInvalidRange, s, 1<<20)
	}
	return n, nil
}

func single(q url.Values, k string) (string, bool) {
	v, ok := q[k]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}
