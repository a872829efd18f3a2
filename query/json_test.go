package query_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-io/strata/query"
	"github.com/strata-io/strata/segment/kbatch"
)

var jsonSample = []string{
	`{"user":"a","n":1,"price":1.5,"ok":true,"tags":["x","y"],"geo":{"lat":1.0,"lon":2},"mixed":1,"offset":7}`,
	`{"user":"b","n":2,"price":2,"ok":false,"tags":[],"geo":null,"mixed":"s","extra":null}`,
	`not json`,
	`[1,2]`,
	`{"n":3.5,"geo":{"lat":"north"},"tags":"x"}`,
	`{"user":"c"} trailing`,
}

// TestInferJSON checks the inferred types: integers, floats that absorb
// integers, strings, booleans, lists, structs, conflicts kept as text, and
// a clash with a default column renamed.
func TestInferJSON(t *testing.T) {
	var vals [][]byte
	for _, s := range jsonSample {
		vals = append(vals, []byte(s))
	}
	fields := query.InferJSON(vals)
	var got []string
	for _, f := range fields {
		got = append(got, f.Name+":"+f.Type.String())
	}
	want := []string{
		"geo:struct<lat: utf8 nullable, lon: int64 nullable>", // "north" after 1.0 makes lat text
		"mixed:utf8",
		"n:float64",
		"value.offset:int64",
		"ok:bool",
		"price:float64",
		"tags:utf8", // a list, then a string
		"user:utf8",
		"extra:utf8",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("inferred\n %s\nwant\n %s", strings.Join(got, " "), strings.Join(want, " "))
	}

	// Inference over the first two values only, then converting all: what
	// does not fit the inferred type is null, and nothing panics.
	fields = query.InferJSON(vals[:2])
	c := query.NewConverter(query.BatchOptions{JSON: fields})
	defer c.Release()
	for i, v := range vals {
		c.Append("t", 0, &kbatch.Record{Offset: int64(i), Value: v})
	}
	c.Append("t", 0, &kbatch.Record{Offset: 99}) // a null value
	rec := c.Flush()
	defer rec.Release()
	if !rec.Schema().Equal(query.SchemaWithJSON(fields)) || rec.NumCols() != int64(7+len(fields)) {
		t.Fatalf("schema %s", rec.Schema())
	}
	js, err := json.Marshal(array.RecordToStructArray(rec))
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(js, &rows); err != nil {
		t.Fatal(err)
	}
	check := func(row int, col string, want any) {
		t.Helper()
		if got := rows[row][col]; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("row %d %s = %v, want %v", row, col, got, want)
		}
	}
	check(0, "user", "a")
	check(0, "n", 1)
	check(0, "price", 1.5)
	check(0, "ok", true)
	check(0, "tags", []any{"x", "y"})
	check(0, "geo", map[string]any{"lat": 1, "lon": 2})
	check(0, "mixed", "1")
	check(0, "value.offset", 7)
	check(1, "mixed", "s")
	check(1, "price", 2)
	check(1, "geo", nil)
	check(1, "tags", []any{})
	for _, row := range []int{2, 3, 5, 6} { // not objects, trailing data, null
		for _, f := range fields {
			check(row, f.Name, nil)
		}
	}
	check(4, "n", nil)                                                                                                                                                // 3.5 in an int64 column
	check(4, "geo", map[string]any{"lat": nil, "lon": nil})                                                                                                           // "north" in a float64 field
	check(4, "tags", nil)                                                                                                                                             // a string in a list column
	check(0, "value", "eyJ1c2VyIjoiYSIsIm4iOjEsInByaWNlIjoxLjUsIm9rIjp0cnVlLCJ0YWdzIjpbIngiLCJ5Il0sImdlbyI6eyJsYXQiOjEuMCwibG9uIjoyfSwibWl4ZWQiOjEsIm9mZnNldCI6N30=") // the raw value stays
}

// TestJSONDecodeOverHTTPAndFlight produces JSON values and reads them with
// decode=json through both surfaces.
func TestJSONDecodeOverHTTPAndFlight(t *testing.T) {
	n := startNode(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.KafkaAddr()), kgo.AllowAutoTopicCreation(), kgo.ProducerBatchCompression(kgo.SnappyCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const total = 300
	var recs []*kgo.Record
	for i := 0; i < total; i++ {
		v := fmt.Sprintf(`{"id":%d,"page":"/p/%d","ms":%d.5,"user":{"name":"u%d","vip":%v}}`, i, i%7, i, i%13, i%2 == 0)
		recs = append(recs, &kgo.Record{Topic: "json", Value: []byte(v)})
	}
	if err := cl.ProduceSync(testContext(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	wantCols := "id:int64 ms:float64 page:utf8 user:struct<name: utf8 nullable, vip: bool nullable>"
	checkBatch := func(rec arrow.RecordBatch, ids map[int64]bool) {
		var cols []string
		for _, f := range rec.Schema().Fields()[7:] {
			cols = append(cols, f.Name+":"+f.Type.String())
		}
		if strings.Join(cols, " ") != wantCols {
			t.Fatalf("JSON columns %v, want %s", cols, wantCols)
		}
		id := rec.Column(7).(*array.Int64)
		user := rec.Column(10).(*array.Struct)
		name := user.Field(0).(*array.String)
		for i := 0; i < int(rec.NumRows()); i++ {
			ids[id.Value(i)] = true
			if want := fmt.Sprintf("u%d", id.Value(i)%13); name.Value(i) != want {
				t.Errorf("id %d: user.name %q, want %q", id.Value(i), name.Value(i), want)
			}
		}
	}

	resp, err := http.Get("http://" + n.HTTPAddr() + "/v1/topics/json/arrow?" + url.Values{"decode": {"json"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("decode=json: %s", resp.Status)
	}
	rd, err := ipc.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[int64]bool{}
	for rd.Next() {
		checkBatch(rd.RecordBatch(), ids)
	}
	rd.Release()
	resp.Body.Close()
	if len(ids) != total {
		t.Errorf("HTTP decode=json: %d distinct ids, want %d", len(ids), total)
	}

	c := flightClient(t, n.FlightAddr())
	cmd, _ := json.Marshal(map[string]any{"topic": "json", "decode": "json"})
	info, err := c.GetFlightInfo(testContext(t), &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: cmd})
	if err != nil {
		t.Fatal(err)
	}
	sch, err := flight.DeserializeSchema(info.Schema, nil)
	if err != nil || sch.NumFields() != 11 {
		t.Fatalf("planned schema %v (%v)", sch, err)
	}
	ids = map[int64]bool{}
	for _, ep := range info.Endpoint {
		stream, err := c.DoGet(testContext(t), ep.Ticket)
		if err != nil {
			t.Fatal(err)
		}
		fr, err := flight.NewRecordReader(stream)
		if err != nil {
			t.Fatal(err)
		}
		if !fr.Schema().Equal(sch) {
			t.Errorf("DoGet schema %s, planned %s", fr.Schema(), sch)
		}
		for fr.Next() {
			checkBatch(fr.RecordBatch(), ids)
		}
		if fr.Err() != nil {
			t.Fatal(fr.Err())
		}
		fr.Release()
	}
	if len(ids) != total {
		t.Errorf("Flight decode=json: %d distinct ids, want %d", len(ids), total)
	}
}
