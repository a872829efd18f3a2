package query_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/strata-io/strata/cmd/node"
	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/query"
	"github.com/strata-io/strata/segment/kbatch"
	"github.com/strata-io/strata/tier/objstore"
)

// fetchHTTP GETs the Arrow endpoint and decodes the IPC stream into sorted
// rows, also returning how many batches it held.
func fetchHTTP(t testing.TB, httpAddr, topic string, params url.Values) ([]row, int) {
	t.Helper()
	u := fmt.Sprintf("http://%s/v1/topics/%s/arrow?%s", httpAddr, url.PathEscape(topic), params.Encode())
	req, _ := http.NewRequestWithContext(testContext(t), http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s: %s", u, resp.Status, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != query.ArrowStreamType {
		t.Fatalf("Content-Type %q", ct)
	}
	rd, err := ipc.NewReader(resp.Body)
	if err != nil {
		t.Fatalf("ipc reader: %v", err)
	}
	defer rd.Release()
	var rows []row
	batches := 0
	for rd.Next() {
		rows = append(rows, rowsOf(t, rd.RecordBatch())...)
		batches++
	}
	if err := rd.Err(); err != nil {
		t.Fatalf("ipc stream: %v", err)
	}
	sortRows(rows)
	return rows, batches
}

// TestHTTPArrowStream produces records with every shape Kafka allows (null
// keys and values, empty ones, headers with null values, zstd-compressed and
// plain batches, three partitions) and reads them back as an Arrow IPC
// stream, whole and in offset, time and partition ranges.
func TestHTTPArrowStream(t *testing.T) {
	n := startNode(t)
	const topic, parts, per = "orders", 3, 400
	recs := produce(t, n.KafkaAddr(), topic, parts, per)
	ms := func(i int) int64 { return baseTS.UnixMilli() + int64(i) }

	for _, c := range []struct {
		name   string
		params url.Values
		keep   func(r *kgo.Record) bool
	}{
		{"everything", url.Values{}, nil},
		{"one partition", url.Values{"partition": {"1"}}, func(r *kgo.Record) bool { return r.Partition == 1 }},
		{"partition list", url.Values{"partition": {"0,2"}}, func(r *kgo.Record) bool { return r.Partition != 1 }},
		{"offset range", url.Values{"partition": {"2"}, "from": {"17"}, "to": {"250"}},
			func(r *kgo.Record) bool { return r.Partition == 2 && r.Offset >= 17 && r.Offset < 250 }},
		{"from only, all partitions", url.Values{"from": {"390"}}, func(r *kgo.Record) bool { return r.Offset >= 390 }},
		{"to beyond the high watermark", url.Values{"partition": {"0"}, "to": {"1000000"}}, func(r *kgo.Record) bool { return r.Partition == 0 }},
		{"time range in ms", url.Values{"start_time": {fmt.Sprint(ms(100))}, "end_time": {fmt.Sprint(ms(700))}},
			func(r *kgo.Record) bool {
				return r.Timestamp.UnixMilli() >= ms(100) && r.Timestamp.UnixMilli() < ms(700)
			}},
		{"time range in RFC 3339", url.Values{"start_time": {baseTS.Add(time.Second).Format(time.RFC3339Nano)}},
			func(r *kgo.Record) bool { return r.Timestamp.UnixMilli() >= ms(1000) }},
		{"time and offsets", url.Values{"partition": {"1"}, "to": {"300"}, "start_time": {fmt.Sprint(ms(600))}},
			func(r *kgo.Record) bool {
				return r.Partition == 1 && r.Offset < 300 && r.Timestamp.UnixMilli() >= ms(600)
			}},
		{"after the end", url.Values{"start_time": {fmt.Sprint(ms(1_000_000))}}, func(*kgo.Record) bool { return false }},
		{"small batches", url.Values{"partition": {"0"}, "batch_rows": {"7"}}, func(r *kgo.Record) bool { return r.Partition == 0 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, batches := fetchHTTP(t, n.HTTPAddr(), topic, c.params)
			want := wantRows(recs, c.keep)
			diffRows(t, c.name, got, want)
			if c.params.Get("batch_rows") == "7" && batches < per/7 {
				t.Errorf("batch_rows=7 gave %d batches for %d rows", batches, len(got))
			}
		})
	}
}

// TestHTTPBadRequests checks every malformed request gets a 4xx with a
// message a person can act on, before any data is read.
func TestHTTPBadRequests(t *testing.T) {
	n := startNode(t)
	produce(t, n.KafkaAddr(), "t", 3, 5)
	base := "http://" + n.HTTPAddr()
	for _, c := range []struct {
		method, path string
		status       int
		want         string
	}{
		{"GET", "/v1/topics/t/arrow?partition=abc", 400, "not a non-negative partition"},
		{"GET", "/v1/topics/t/arrow?partition=-1", 400, "not a non-negative partition"},
		{"GET", "/v1/topics/t/arrow?from=-5", 400, "from=\"-5\""},
		{"GET", "/v1/topics/t/arrow?from=x", 400, "from=\"x\""},
		{"GET", "/v1/topics/t/arrow?to=0", 400, "to=0 selects nothing"},
		{"GET", "/v1/topics/t/arrow?from=10&to=5", 400, "to (5) must be greater than from (10)"},
		{"GET", "/v1/topics/t/arrow?start_time=yesterday", 400, "neither RFC 3339"},
		{"GET", "/v1/topics/t/arrow?end_time=2026-13-01T00:00:00Z", 400, "end_time"},
		{"GET", "/v1/topics/t/arrow?start_time=2000&end_time=1000", 400, "must be after start time"},
		{"GET", "/v1/topics/t/arrow?form=3", 400, `unknown parameter "form"`},
		{"GET", "/v1/topics/t/arrow?from=1&from=2", 400, "given 2 times"},
		{"GET", "/v1/topics/t/arrow?batch_rows=0", 400, "batch_rows"},
		{"GET", "/v1/topics/t/arrow?partition=1,1", 400, "partition 1 listed twice"},
		{"GET", "/v1/topics/t/arrow?decode=avro", 400, `decode="avro"`},
		{"GET", "/v1/topics/nope/arrow", 404, `unknown topic: "nope"`},
		{"GET", "/v1/topics/t/arrow?partition=3", 404, "has 3 partitions, no partition 3"},
		{"POST", "/v1/topics/t/arrow", 405, ""},
		{"GET", "/v1/topics/t/parquet?partition=abc", 400, "not a non-negative partition"},
		{"GET", "/v1/topics/nope/parquet", 404, `unknown topic: "nope"`},
		{"GET", "/v1/topics/t/parquet?partition=3", 404, "has 3 partitions, no partition 3"},
		{"GET", "/v1/topics/t/csv", 404, ""},
	} {
		req, _ := http.NewRequestWithContext(testContext(t), c.method, base+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(body), c.want) {
			t.Errorf("%s %s: %d %q; want %d containing %q", c.method, c.path, resp.StatusCode, body, c.status, c.want)
		}
	}
}

// TestHTTPEmptyAndRetained reads an empty topic (a stream with the schema and
// no rows) and a partition whose log start was moved by DeleteRecords (the
// deleted records are not returned).
func TestHTTPEmptyAndRetained(t *testing.T) {
	n := startNode(t)
	recs := produce(t, n.KafkaAddr(), "kept", 3, 50)

	cl, err := kgo.NewClient(kgo.SeedBrokers(n.KafkaAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := testContext(t)
	// An empty topic: created, never written.
	ct := kmsg.NewPtrCreateTopicsRequest()
	ctt := kmsg.NewCreateTopicsRequestTopic()
	ctt.Topic, ctt.NumPartitions, ctt.ReplicationFactor = "empty", 2, 1
	ct.Topics = append(ct.Topics, ctt)
	if _, err := ct.RequestWith(ctx, cl); err != nil {
		t.Fatal(err)
	}
	// DeleteRecords moves partition 1's log start to 20.
	dr := kmsg.NewPtrDeleteRecordsRequest()
	drt := kmsg.NewDeleteRecordsRequestTopic()
	drt.Topic = "kept"
	drp := kmsg.NewDeleteRecordsRequestTopicPartition()
	drp.Partition, drp.Offset = 1, 20
	drt.Partitions = append(drt.Partitions, drp)
	dr.Topics = append(dr.Topics, drt)
	resp, err := dr.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("DeleteRecords error code %d", code)
	}

	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := fetchHTTPStatus(n.HTTPAddr(), "empty"); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // poll until the topic is in the cache
	}
	got, _ := fetchHTTP(t, n.HTTPAddr(), "empty", url.Values{})
	if len(got) != 0 {
		t.Errorf("empty topic gave %d rows", len(got))
	}
	got, _ = fetchHTTP(t, n.HTTPAddr(), "kept", url.Values{"partition": {"1"}})
	diffRows(t, "after DeleteRecords", got, wantRows(recs, func(r *kgo.Record) bool { return r.Partition == 1 && r.Offset >= 20 }))
}

// fetchHTTPStatus returns nil when the topic's endpoint answers 200.
func fetchHTTPStatus(httpAddr, topic string) (int, error) {
	resp, err := http.Get(fmt.Sprintf("http://%s/v1/topics/%s/arrow", httpAddr, topic))
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return resp.StatusCode, errors.New(resp.Status)
	}
	return 200, nil
}

// flightClient connects an arrow-go Flight client to addr.
func flightClient(t testing.TB, addr string) flight.Client {
	t.Helper()
	c, err := flight.NewClientWithMiddleware(addr, nil, nil, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// doGet reads one endpoint's stream into rows.
func doGet(t testing.TB, c flight.Client, ep *flight.FlightEndpoint) []row {
	t.Helper()
	stream, err := c.DoGet(testContext(t), ep.Ticket)
	if err != nil {
		t.Fatalf("DoGet: %v", err)
	}
	rd, err := flight.NewRecordReader(stream)
	if err != nil {
		t.Fatalf("DoGet reader: %v", err)
	}
	defer rd.Release()
	var rows []row
	for rd.Next() {
		rows = append(rows, rowsOf(t, rd.RecordBatch())...)
	}
	if err := rd.Err(); err != nil {
		t.Fatalf("DoGet stream: %v", err)
	}
	return rows
}

// TestFlight plans reads with GetFlightInfo (path and JSON command
// descriptors), checks there is one endpoint per partition pointing at the
// node, and reads every endpoint with DoGet; it also checks ListFlights,
// GetSchema and the error codes.
func TestFlight(t *testing.T) {
	n := startNode(t)
	const topic, parts, per = "events", 3, 300
	recs := produce(t, n.KafkaAddr(), topic, parts, per)
	c := flightClient(t, n.FlightAddr())
	ctx := testContext(t)
	ms := func(i int) int64 { return baseTS.UnixMilli() + int64(i) }
	cmd := func(v any) *flight.FlightDescriptor {
		b, _ := json.Marshal(v)
		return &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: b}
	}

	for _, tc := range []struct {
		name      string
		desc      *flight.FlightDescriptor
		endpoints int
		total     int64
		keep      func(r *kgo.Record) bool
	}{
		{"path", &flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{topic}}, parts, parts * per, nil},
		{"command offsets", cmd(map[string]any{"topic": topic, "partitions": []int{0, 2}, "from": 10, "to": 100}), 2, 180,
			func(r *kgo.Record) bool { return r.Partition != 1 && r.Offset >= 10 && r.Offset < 100 }},
		{"command times", cmd(map[string]any{"topic": topic, "start_time": baseTS.Add(200 * time.Millisecond).Format(time.RFC3339Nano), "end_time": ms(500)}), parts, -1,
			func(r *kgo.Record) bool {
				return r.Timestamp.UnixMilli() >= ms(200) && r.Timestamp.UnixMilli() < ms(500)
			}},
		{"command one partition", cmd(map[string]any{"topic": topic, "partition": 1}), 1, per,
			func(r *kgo.Record) bool { return r.Partition == 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, err := c.GetFlightInfo(ctx, tc.desc)
			if err != nil {
				t.Fatalf("GetFlightInfo: %v", err)
			}
			if len(info.Endpoint) != tc.endpoints {
				t.Fatalf("%d endpoints, want %d", len(info.Endpoint), tc.endpoints)
			}
			if info.TotalRecords != tc.total {
				t.Errorf("TotalRecords %d, want %d", info.TotalRecords, tc.total)
			}
			sch, err := flight.DeserializeSchema(info.Schema, nil)
			if err != nil || !sch.Equal(query.Schema) {
				t.Errorf("schema %v (%v), want %v", sch, err, query.Schema)
			}
			var got []row
			for _, ep := range info.Endpoint {
				if len(ep.Location) != 1 || ep.Location[0].Uri != "grpc+tcp://"+n.FlightAddr() {
					t.Errorf("endpoint location %v, want grpc+tcp://%s", ep.Location, n.FlightAddr())
				}
				// Each endpoint is read by its own client, as a parallel
				// engine would.
				got = append(got, doGet(t, flightClient(t, strings.TrimPrefix(ep.Location[0].Uri, "grpc+tcp://")), ep)...)
			}
			sortRows(got)
			diffRows(t, tc.name, got, wantRows(recs, tc.keep))
		})
	}

	t.Run("tickets are a snapshot", func(t *testing.T) {
		info, err := c.GetFlightInfo(ctx, &flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{topic}})
		if err != nil {
			t.Fatal(err)
		}
		more := produce(t, n.KafkaAddr(), topic, parts, 10)
		var got []row
		for _, ep := range info.Endpoint {
			got = append(got, doGet(t, c, ep)...)
		}
		sortRows(got)
		diffRows(t, "planned before more records", got, wantRows(recs, nil))
		recs = append(recs, more...)
	})

	t.Run("ListFlights", func(t *testing.T) {
		produce(t, n.KafkaAddr(), "other", parts, 2)
		stream, err := c.ListFlights(ctx, &flight.Criteria{})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]*flight.FlightInfo{}
		for {
			info, err := stream.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			seen[info.FlightDescriptor.Path[0]] = info
		}
		if len(seen) != 2 || seen[topic] == nil || seen["other"] == nil {
			t.Fatalf("ListFlights listed %v", seen)
		}
		// Listed tickets are open-ended: they read up to the high
		// watermark at DoGet time, including the records produced since.
		var got []row
		for _, ep := range seen[topic].Endpoint {
			got = append(got, doGet(t, c, ep)...)
		}
		sortRows(got)
		diffRows(t, "listed endpoints", got, wantRows(recs, nil))
	})

	t.Run("errors", func(t *testing.T) {
		for _, ec := range []struct {
			desc *flight.FlightDescriptor
			code codes.Code
		}{
			{&flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{"nope"}}, codes.NotFound},
			{&flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{"a", "b"}}, codes.InvalidArgument},
			{cmd(map[string]any{"topic": topic, "partition": 9}), codes.NotFound},
			{cmd(map[string]any{"topic": topic, "from": 9, "to": 3}), codes.InvalidArgument},
			{cmd(map[string]any{"topic": topic, "start_time": "noon"}), codes.InvalidArgument},
			{cmd(map[string]any{"topic": topic, "form": 1}), codes.InvalidArgument},
			{&flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: []byte("{")}, codes.InvalidArgument},
		} {
			_, err := c.GetFlightInfo(ctx, ec.desc)
			if status.Code(err) != ec.code {
				t.Errorf("GetFlightInfo(%v): %v, want code %v", ec.desc, err, ec.code)
			}
		}
		stream, err := c.DoGet(ctx, &flight.Ticket{Ticket: []byte(`{"v":1,"topic":"events","partition":-1}`)})
		if err == nil {
			_, err = stream.Recv()
		}
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("DoGet with a forged ticket: %v, want InvalidArgument", err)
		}
		if _, err := c.GetSchema(ctx, &flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{topic}}); err != nil {
			t.Errorf("GetSchema: %v", err)
		}
	})
}

// TestAnyNodeReads writes through one node and reads through another that
// shares etcd and the object store but leads nothing: reads need no
// leadership, and the reading node waits for its index cache to catch up.
func TestAnyNodeReads(t *testing.T) {
	ctx := testContext(t)
	emb, err := metadata.StartEmbedded(ctx, metadata.EmbeddedConfig{Dir: filepath.Join(t.TempDir(), "etcd")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emb.Close() })
	store := "file://" + filepath.Join(t.TempDir(), "objects")
	shared := func(id int32) nodeOpts {
		return func(c *node.Config) {
			c.NodeID = id
			c.EtcdEndpoints = emb.Endpoints()
			c.ObjectStore = store
			c.CreateBucket = true
		}
	}
	writer := startNode(t, shared(0))
	reader := startNode(t, shared(1))
	recs := produce(t, writer.KafkaAddr(), "shared", 3, 200)
	for _, ld := range []string{reader.HTTPAddr()} {
		got, _ := fetchHTTP(t, ld, "shared", url.Values{})
		diffRows(t, "read through the other node", got, wantRows(recs, nil))
	}
	c := flightClient(t, reader.FlightAddr())
	info, err := c.GetFlightInfo(ctx, &flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{"shared"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []row
	for _, ep := range info.Endpoint {
		got = append(got, doGet(t, c, ep)...)
	}
	sortRows(got)
	diffRows(t, "flight through the other node", got, wantRows(recs, nil))
}

// readerEnv is a Reader of its own over the etcd and object store a node
// writes to, for tests that drive Reader directly.
type readerEnv struct {
	node   *node.Node
	meta   *metadata.Store
	bucket objstore.Bucket
}

func newReaderEnv(t *testing.T) *readerEnv {
	t.Helper()
	ctx := testContext(t)
	emb, err := metadata.StartEmbedded(ctx, metadata.EmbeddedConfig{Dir: filepath.Join(t.TempDir(), "etcd")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emb.Close() })
	store := "file://" + filepath.Join(t.TempDir(), "objects")
	n := startNode(t, func(c *node.Config) {
		c.EtcdEndpoints = emb.Endpoints()
		c.ObjectStore = store
		c.CreateBucket = true
	})
	meta, err := metadata.Open(ctx, metadata.Config{Endpoints: emb.Endpoints(), Cluster: node.DefaultConfig().Cluster}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	bucket, err := objstore.Open(ctx, store, objstore.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bucket.Close() })
	return &readerEnv{node: n, meta: meta, bucket: bucket}
}

// faultyBucket injects faults into GetRange.
type faultyBucket struct {
	objstore.BucketReader
	corrupt  bool
	notFound bool
}

func (f *faultyBucket) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	if f.notFound {
		return nil, fmt.Errorf("faulty: %w", objstore.ErrNotFound)
	}
	b, err := f.BucketReader.GetRange(ctx, key, off, n)
	if err == nil && f.corrupt {
		b = bytes.Clone(b)
		b[len(b)/2] ^= 0xff
	}
	return b, err
}

// TestReaderScan drives Reader directly: bounds, every record once in
// offset order, cancellation from the callback, bad ranges, unknown topics
// and partitions, and storage faults.
func TestReaderScan(t *testing.T) {
	e := newReaderEnv(t)
	recs := produce(t, e.node.KafkaAddr(), "scan", 3, 300)
	ctx := testContext(t)
	r := query.New(e.meta, e.bucket, nil)
	tp := metadata.TP{Topic: "scan", Partition: 2}

	// The reader's own metadata cache learns the topic through its watch.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := r.Topic("scan"); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	var got []row
	b, err := r.Scan(ctx, tp, query.Range{From: 5, To: 290}, func(rec *kbatch.Record) error {
		got = append(got, fromKgo(&kgo.Record{Topic: "scan", Partition: 2, Offset: rec.Offset, Timestamp: time.UnixMilli(rec.Timestamp),
			Key: bytes.Clone(rec.Key), Value: bytes.Clone(rec.Value), Headers: kgoHeaders(rec.Headers)}))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if b != (query.Bounds{From: 5, To: 290, HighWatermark: 300, LogStartOffset: 0}) {
		t.Errorf("bounds %+v", b)
	}
	diffRows(t, "Scan", got, wantRows(recs, func(r *kgo.Record) bool { return r.Partition == 2 && r.Offset >= 5 && r.Offset < 290 }))

	cctx, cancel := context.WithCancel(ctx)
	seen := 0
	_, err = r.Scan(cctx, tp, query.Range{}, func(*kbatch.Record) error {
		seen++
		if seen == 3 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled scan: %v after %d records", err, seen)
	}
	stop := errors.New("enough")
	if _, err := r.Scan(ctx, tp, query.Range{}, func(*kbatch.Record) error { return stop }); err != stop {
		t.Errorf("callback error came back as %v", err)
	}

	for _, c := range []struct {
		tp   metadata.TP
		rg   query.Range
		want error
	}{
		{tp, query.Range{From: -1}, query.ErrInvalidRange},
		{tp, query.Range{From: 9, To: 9}, query.ErrInvalidRange},
		{tp, query.Range{StartTime: baseTS, EndTime: baseTS}, query.ErrInvalidRange},
		{metadata.TP{Topic: "nope"}, query.Range{}, query.ErrUnknownTopic},
		{metadata.TP{Topic: "scan", Partition: 3}, query.Range{}, query.ErrUnknownPartition},
		{metadata.TP{Topic: "scan", Partition: -1}, query.Range{}, query.ErrUnknownPartition},
	} {
		if _, err := r.Scan(ctx, c.tp, c.rg, func(*kbatch.Record) error { return nil }); !errors.Is(err, c.want) {
			t.Errorf("Scan(%v, %+v) = %v, want %v", c.tp, c.rg, err, c.want)
		}
	}

	for _, fb := range []*faultyBucket{{BucketReader: e.bucket, corrupt: true}, {BucketReader: e.bucket, notFound: true}} {
		fr := query.New(e.meta, fb, nil)
		_, err := fr.Scan(ctx, tp, query.Range{}, func(*kbatch.Record) error { return nil })
		if !errors.Is(err, query.ErrStorage) {
			t.Errorf("faulty bucket %+v: %v, want ErrStorage", *fb, err)
		}
	}
}

func kgoHeaders(hs []kbatch.RecordHeader) []kgo.RecordHeader {
	var out []kgo.RecordHeader
	for _, h := range hs {
		out = append(out, kgo.RecordHeader{Key: h.Key, Value: bytes.Clone(h.Value)})
	}
	return out
}
