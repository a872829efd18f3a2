package query

import (
	"encoding/json"
	"errors"
	"net/url"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/flight"

	"github.com/strata-io/strata/segment/kbatch"
)

// FuzzParseQuery feeds arbitrary query strings to the HTTP parameter parser:
// it must never panic, and whatever it accepts must be a valid Range.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"", "partition=1&from=2&to=3", "partition=0,1,2", "start_time=2026-01-01T00:00:00Z&end_time=1767312000000",
		"from=-1", "to=0", "partition=99999999999", "start_time=9223372036854775807", "batch_rows=5", "x=%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		req, err := ParseQuery("t", q)
		if err != nil {
			if !errors.Is(err, ErrInvalidRange) {
				t.Fatalf("%q: error %v does not wrap ErrInvalidRange", raw, err)
			}
			return
		}
		if err := req.Range.Validate(); err != nil {
			t.Fatalf("%q: accepted an invalid range: %v", raw, err)
		}
		for _, p := range req.Partitions {
			if p < 0 {
				t.Fatalf("%q: accepted partition %d", raw, p)
			}
		}
		batchRows(q)
	})
}

// FuzzFlightInputs feeds arbitrary bytes as a JSON command descriptor and as
// a ticket: neither may panic, and accepted ones must be valid.
func FuzzFlightInputs(f *testing.F) {
	for _, s := range []string{`{"topic":"t"}`, `{"topic":"t","partitions":[0,1],"from":1,"to":9}`,
		`{"topic":"t","start_time":"2026-01-01T00:00:00Z","end_time":1767312000000}`, `{"topic":"t","start_time":1e400}`,
		`{"v":1,"topic":"t","partition":0,"from":0,"to":10}`, `{"v":1,"topic":"t","partition":0,"from":0,"start_ms":-9223372036854775808}`, `{`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := ParseFlightDescriptor(&flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: b})
		if err == nil {
			if req.Topic == "" {
				t.Fatalf("%q: accepted a command without a topic", b)
			}
			if err := req.Range.Validate(); err != nil {
				t.Fatalf("%q: accepted an invalid range: %v", b, err)
			}
		} else if !errors.Is(err, ErrInvalidRange) {
			t.Fatalf("%q: error %v does not wrap ErrInvalidRange", b, err)
		}
		tk, rg, err := parseTicket(b)
		if err == nil && (tk.Topic == "" || tk.Partition < 0 || rg.From < 0 || rg.To < 0) {
			t.Fatalf("%q: accepted ticket %+v", b, tk)
		}
	})
}

// FuzzTicketJSONColumns feeds arbitrary JSON where a ticket describes its
// JSON columns: a malformed description must be an error, never a panic,
// and an accepted one must build a working Converter.
func FuzzTicketJSONColumns(f *testing.F) {
	fields := InferJSON([][]byte{[]byte(`{"a":1,"b":"x","c":{"d":[1.5,2]},"e":true,"f":[{"g":null}],"offset":3}`)})
	good, _ := json.Marshal(ticket{V: 1, Topic: "t", JSON: ticketJSON(fields)})
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(`{"v":1,"topic":"t","json":[{"n":"x","t":{"t":"list","e":{"t":"list"}}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tk, _, err := parseTicket(b)
		if err != nil {
			return
		}
		fs, err := jsonFieldsFromTicket(tk.JSON)
		if err != nil {
			return
		}
		c := NewConverter(BatchOptions{JSON: fs})
		defer c.Release()
		c.Append("t", 0, &kbatch.Record{Value: []byte(`{"a":1,"c":{"d":[1]},"f":[{"g":"h"}],"x":[[1],2]}`)})
		if rec := c.Flush(); rec != nil {
			rec.Release()
		}
	})
}
