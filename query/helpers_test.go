package query_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-io/strata/cmd/node"
	"github.com/strata-io/strata/query"
)

// testTimeout bounds each test's client work; the machine is small and
// shared, so it is generous.
const testTimeout = 2 * time.Minute

// baseTS is the timestamp of the first produced record: fixed so that time
// ranges in the tests select known records.
var baseTS = time.UnixMilli(1_767_225_600_000).UTC() // 2026-01-01T00:00:00Z

// nodeOpts adjusts a test node's config.
type nodeOpts func(*node.Config)

// startNode starts a real node (embedded etcd, local object store) with
// Kafka, HTTP and Flight on ephemeral loopback ports. Its log is shown only
// when the test fails.
func startNode(t testing.TB, opts ...nodeOpts) *node.Node {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.KafkaAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.FlightAddr = "127.0.0.1:0"
	cfg.FlushInterval = 10 * time.Millisecond
	cfg.DefaultPartitions = 3
	for _, o := range opts {
		o(&cfg)
	}
	logs := &tailBuffer{max: 256 << 10}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	n, err := node.Start(ctx, cfg, logger)
	if err != nil {
		t.Fatalf("start node: %v\nnode log:\n%s", err, logs.String())
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Errorf("close node: %v", err)
		}
		if t.Failed() {
			t.Logf("node log (tail):\n%s", logs.String())
		}
	})
	return n
}

// tailBuffer is a concurrency-safe writer keeping the last max bytes: the
// node logs from its own goroutines, possibly after the test returned.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// hdr is one header as a row holds it; a nil Value is a null one.
type hdr struct {
	Key   string
	Value *string
}

// row is one record as a table row. Nil Key or Value is null.
type row struct {
	Topic     string
	Partition int32
	Offset    int64
	Timestamp int64 // ms
	Key       *string
	Value     *string
	Headers   []hdr
}

func (r row) String() string {
	s := func(p *string) string {
		if p == nil {
			return "null"
		}
		return fmt.Sprintf("%q", *p)
	}
	var hs []string
	for _, h := range r.Headers {
		hs = append(hs, h.Key+"="+s(h.Value))
	}
	return fmt.Sprintf("%s/%d@%d ts=%d key=%s value=%s headers=[%s]", r.Topic, r.Partition, r.Offset, r.Timestamp, s(r.Key), s(r.Value), strings.Join(hs, " "))
}

func strp(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}

// fromKgo is the row a produced record must come back as.
func fromKgo(r *kgo.Record) row {
	out := row{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UnixMilli(), Key: strp(r.Key), Value: strp(r.Value)}
	for _, h := range r.Headers {
		out.Headers = append(out.Headers, hdr{h.Key, strp(h.Value)})
	}
	return out
}

// rowsOf decodes a record batch of query.Schema into rows, checking the
// schema on the way.
func rowsOf(t testing.TB, rec arrow.RecordBatch) []row {
	t.Helper()
	if !rec.Schema().Equal(query.Schema) {
		t.Fatalf("batch schema\n%s\nwant\n%s", rec.Schema(), query.Schema)
	}
	topic := rec.Column(0).(*array.String)
	part := rec.Column(1).(*array.Int32)
	off := rec.Column(2).(*array.Int64)
	ts := rec.Column(3).(*array.Timestamp)
	key := rec.Column(4).(*array.Binary)
	val := rec.Column(5).(*array.Binary)
	hl := rec.Column(6).(*array.List)
	hs := hl.ListValues().(*array.Struct)
	hk := hs.Field(0).(*array.String)
	hv := hs.Field(1).(*array.Binary)
	out := make([]row, rec.NumRows())
	for i := range out {
		// String.Value aliases the batch's memory, which is reused once
		// the batch is released: clone.
		r := row{Topic: strings.Clone(topic.Value(i)), Partition: part.Value(i), Offset: off.Value(i), Timestamp: int64(ts.Value(i))}
		if !key.IsNull(i) {
			r.Key = strp(bytes.Clone(key.Value(i)))
			if r.Key == nil {
				r.Key = new(string)
			}
		}
		if !val.IsNull(i) {
			r.Value = strp(bytes.Clone(val.Value(i)))
			if r.Value == nil {
				r.Value = new(string)
			}
		}
		if hl.IsNull(i) {
			t.Fatalf("row %d: null headers list", i)
		}
		start, end := hl.ValueOffsets(i)
		for j := start; j < end; j++ {
			h := hdr{Key: strings.Clone(hk.Value(int(j)))}
			if !hv.IsNull(int(j)) {
				s := string(hv.Value(int(j)))
				h.Value = &s
			}
			r.Headers = append(r.Headers, h)
		}
		out[i] = r
	}
	return out
}

// sortRows orders rows by partition then offset.
func sortRows(rs []row) {
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].Partition != rs[j].Partition {
			return rs[i].Partition < rs[j].Partition
		}
		return rs[i].Offset < rs[j].Offset
	})
}

// diffRows reports the first differences between got and want, both sorted.
func diffRows(t testing.TB, what string, got, want []row) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d rows, want %d", what, len(got), len(want))
	}
	bad := 0
	for i := 0; i < min(len(got), len(want)) && bad < 5; i++ {
		if got[i].String() != want[i].String() {
			t.Errorf("%s: row %d\n got  %s\n want %s", what, i, got[i], want[i])
			bad++
		}
	}
}

// produce writes perPartition records to each of partitions partitions of
// topic, half through a zstd-compressing producer and half uncompressed,
// with null keys, null and empty values, and headers (some with null
// values). Record i (counting across partitions) has timestamp baseTS+i ms.
// It returns the records with their assigned offsets.
func produce(t testing.TB, addr, topic string, partitions int32, perPartition int) []*kgo.Record {
	t.Helper()
	return produceWith(t, addr, topic, partitions, perPartition)
}

// produceWith is produce with extra producer options.
func produceWith(t testing.TB, addr, topic string, partitions int32, perPartition int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	ctx := testContext(t)
	n := int(partitions) * perPartition
	recs := make([]*kgo.Record, n)
	for i := range recs {
		r := &kgo.Record{
			Topic:     topic,
			Partition: int32(i) % partitions,
			Timestamp: baseTS.Add(time.Duration(i) * time.Millisecond),
			Key:       []byte(fmt.Sprintf("key-%05d", i)),
			Value:     []byte(fmt.Sprintf("value-%05d-%s", i, strings.Repeat("v", i%53))),
		}
		switch {
		case i%7 == 0:
			r.Key = nil
		case i%7 == 1:
			r.Key = []byte{}
		}
		switch {
		case i%5 == 0:
			r.Value = nil
		case i%11 == 0:
			r.Value = []byte{}
		}
		if i%3 != 0 {
			r.Headers = []kgo.RecordHeader{{Key: "trace", Value: []byte(fmt.Sprintf("t%d", i))}, {Key: "nullable", Value: nil}, {Key: "", Value: []byte{}}}
		}
		recs[i] = r
	}
	for half, codec := range []kgo.CompressionCodec{kgo.ZstdCompression(), kgo.NoCompression()} {
		cl, err := kgo.NewClient(append([]kgo.Opt{
			kgo.SeedBrokers(addr),
			kgo.AllowAutoTopicCreation(),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.ProducerBatchCompression(codec),
			kgo.ProducerLinger(5 * time.Millisecond),
		}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		part := recs[half*n/2 : (half+1)*n/2]
		if half == 1 {
			part = recs[n/2:]
		}
		if err := cl.ProduceSync(ctx, part...).FirstErr(); err != nil {
			cl.Close()
			t.Fatalf("produce: %v", err)
		}
		cl.Close()
	}
	return recs
}

// wantRows converts produced records to sorted rows, keeping those keep
// accepts (nil keeps all).
func wantRows(recs []*kgo.Record, keep func(r *kgo.Record) bool) []row {
	var out []row
	for _, r := range recs {
		if keep == nil || keep(r) {
			out = append(out, fromKgo(r))
		}
	}
	sortRows(out)
	return out
}
