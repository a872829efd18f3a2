package bench

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/strata-io/strata/cmd/node"
)

// Every node, etcd, MinIO and client a test or benchmark starts must be
// gone by the end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func testCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	tb.Cleanup(cancel)
	return ctx
}

// startNode starts a cluster with the fs store and one node on it, both
// closed when tb ends, and creates topic with partitions partitions.
func startNode(tb testing.TB, topic string, partitions int32) *node.Node {
	tb.Helper()
	ctx := testCtx(tb)
	c, err := StartCluster(ctx, ClusterConfig{Dir: tb.TempDir(), Store: StoreFS})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	n, err := c.StartNode(ctx, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { closeNode(n) })
	if err := CreateTopic(ctx, n.KafkaAddr(), topic, partitions); err != nil {
		tb.Fatal(err)
	}
	return n
}

// TestRun runs every scenario on a tiny workload: the numbers do not
// matter, the exactly-once checks and the metrics plumbing do.
func TestRun(t *testing.T) {
	for _, store := range []string{StoreFS, StoreMinIO} {
		t.Run(store, func(t *testing.T) {
			const records = 3000
			res, err := Run(testCtx(t), Config{
				Store: store, Records: records, RecordSize: 200, Partitions: 3, Producers: 2,
				PacedRate: 1000, PacedWarmup: 50 * time.Millisecond,
				PhaseTimeout: time.Minute, Dir: t.TempDir(),
			})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if !res.Verified {
				t.Fatal("result not verified")
			}
			checks := []struct {
				name string
				got  float64
				want float64 // exact when > 0; 0 means "must be > 0"
			}{
				{"produced", float64(res.Produce.Records), records},
				{"hot consumed", float64(res.Hot.Records), records},
				{"cold consumed", float64(res.Cold.Records), records},
				{"ingested bytes", float64(res.Cost.IngestedBytes), records * 200},
				{"hot local read bytes", res.Hot.LocalReadBytes, 0},
				{"cold GETs", res.Cold.StoreGets, 0},
				{"cold ranged GETs", res.Cold.ColdGets, 0},
				{"flushes", res.Cost.Flushes, 0},
				{"PUTs", res.Cost.StorePuts, 0},
				{"index keys", float64(res.Cost.KeysAtEnd.Index), 0},
				{"produce p50", float64(res.Produce.P50), 0},
				{"paced records", float64(res.Paced.Records), records / 10},
				{"paced p50", float64(res.Paced.P50), 0},
			}
			for _, c := range checks {
				if (c.want > 0 && c.got != c.want) || (c.want == 0 && c.got <= 0) {
					t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
				}
			}
			if res.Hot.ObjectReadBytes != 0 {
				t.Errorf("hot consume read %v bytes from the object store, want 0", res.Hot.ObjectReadBytes)
			}
			md := res.Markdown()
			for _, want := range []string{"| object store | " + store + " |", "verified | yes"} {
				if !strings.Contains(md, want) {
					t.Errorf("Markdown lacks %q:\n%s", want, md)
				}
			}
		})
	}
}

// TestConsumeDetectsExtraRecord shows the end-to-end check can fail: a
// record the ledger never acked, written to the log behind its back, is a
// duplicate of id 0 that Consume must report.
func TestConsumeDetectsExtraRecord(t *testing.T) {
	ctx := testCtx(t)
	n := startNode(t, "t", 2)
	l, err := NewLedger(500, 64, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Produce(ctx, n.KafkaAddr(), l, ProduceOptions{Topic: "t", Producers: 2, TimeLimit: time.Minute}); err != nil {
		t.Fatalf("Produce: %v", err)
	}
	if _, err := Consume(ctx, n.KafkaAddr(), l, ConsumeOptions{Topic: "t", TimeLimit: time.Minute}); err != nil {
		t.Fatalf("Consume of a clean log: %v", err)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(n.KafkaAddr()), kgo.DefaultProduceTopic("t"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: l.value(0), Partition: l.part[0]}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	_, err = Consume(ctx, n.KafkaAddr(), l, ConsumeOptions{Topic: "t", TimeLimit: time.Minute})
	if !errors.Is(err, ErrVerify) {
		t.Fatalf("Consume with an extra record: err = %v, want ErrVerify", err)
	}
}

// fakeRecord is one consumed record for TestCheck.
type fakeRecord struct {
	partition int32
	offset    int64
	value     []byte
}

// TestCheck feeds Check hand-made consume passes: only the exact one may
// pass.
func TestCheck(t *testing.T) {
	const n = 10
	l, err := NewLedger(n, 32, 7)
	if err != nil {
		t.Fatal(err)
	}
	// Acknowledge ids 0..9 round-robin on 2 partitions, as a broker would.
	var exact []fakeRecord
	for id := range int64(n) {
		v := l.issue(id)
		p, off := int32(id%2), id/2
		l.ack(id, p, off, time.Millisecond, nil)
		exact = append(exact, fakeRecord{p, off, v})
	}
	if err := l.ProduceErr(); err != nil {
		t.Fatal(err)
	}
	flip := func(v []byte) []byte {
		c := append([]byte(nil), v...)
		c[20] ^= 1
		return c
	}
	tests := []struct {
		name    string
		records []fakeRecord
		hw      map[int32]int64
		want    string // "" = must pass
	}{
		{"exact", exact, map[int32]int64{0: 5, 1: 5}, ""},
		{"missing", exact[:n-1], map[int32]int64{0: 5, 1: 5}, "missing"},
		{"duplicate", append(append([]fakeRecord(nil), exact...), exact[3]), map[int32]int64{0: 5, 1: 5}, "duplicates"},
		{"corrupt", append(append([]fakeRecord(nil), exact[:n-1]...), fakeRecord{1, 4, flip(exact[n-1].value)}), map[int32]int64{0: 5, 1: 5}, "corrupt"},
		{"short", append(append([]fakeRecord(nil), exact[:n-1]...), fakeRecord{1, 4, exact[n-1].value[:31]}), map[int32]int64{0: 5, 1: 5}, "corrupt"},
		{"misplaced", append(append([]fakeRecord(nil), exact[:n-1]...), fakeRecord{0, 4, exact[n-1].value}), map[int32]int64{0: 5, 1: 5}, "wrong partition/offset"},
		{"extra record past the acked ones", exact, map[int32]int64{0: 6, 1: 5}, "high watermark"},
		{"unknown id", append(append([]fakeRecord(nil), exact...), fakeRecord{0, 5, l.value(n + 100)[:32]}), map[int32]int64{0: 5, 1: 5}, "corrupt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := l.NewCheck()
			for p, hw := range tt.hw {
				c.HighWatermark(p, hw)
			}
			for _, r := range tt.records {
				c.Record(r.partition, r.offset, r.value)
			}
			err := c.Err()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Err() = %v, want nil", err)
			case tt.want != "" && !errors.Is(err, ErrVerify):
				t.Fatalf("Err() = %v, want ErrVerify", err)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("Err() = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

// TestProduceErr: a failed acks=all produce makes the whole run unverifiable.
func TestProduceErr(t *testing.T) {
	l, err := NewLedger(2, 16, 1)
	if err != nil {
		t.Fatal(err)
	}
	l.issue(0)
	l.issue(1)
	l.ack(0, 0, 0, time.Millisecond, nil)
	l.ack(1, 0, 0, 0, errors.New("request timed out"))
	if err := l.ProduceErr(); !errors.Is(err, ErrVerify) || !strings.Contains(err.Error(), "request timed out") {
		t.Fatalf("ProduceErr() = %v, want ErrVerify naming the cause", err)
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP strata_objstore_requests_total Object store requests.
# TYPE strata_objstore_requests_total counter
strata_objstore_requests_total{op="put",result="ok",store="primary"} 12
strata_objstore_requests_total{op="get_range",result="ok",store="primary"} 7
strata_objstore_requests_total{op="put",result="error",store="primary"} 1
strata_cold_gets_total 3.5e+01
weird{path="a\"b\\c",x="1"} +Inf 1700000000000
strata_flush_total{result="ok"} 4
`
	m, err := ParseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	sums := []struct {
		name  string
		match []string
		want  float64
	}{
		{"strata_objstore_requests_total", []string{"op", "put", "result", "ok"}, 12},
		{"strata_objstore_requests_total", []string{"op", "put"}, 13},
		{"strata_objstore_requests_total", nil, 20},
		{"strata_objstore_requests_total", []string{"op", "delete"}, 0},
		{"strata_cold_gets_total", nil, 35},
		{"strata_flush_total", []string{"result", "ok"}, 4},
		{"absent", nil, 0},
	}
	for _, s := range sums {
		if got := m.Sum(s.name, s.match...); got != s.want {
			t.Errorf("Sum(%s, %v) = %v, want %v", s.name, s.match, got, s.want)
		}
	}
	if got := m.Sum("weird", "path", `a"b\c`); got <= 1e308 {
		t.Errorf("escaped label: Sum = %v, want +Inf", got)
	}

	for _, bad := range []string{
		"no_value",
		`x{a="1" 3`,
		`x{a=1} 3`,
		`x{a="1} 3`,
		"x 1 2 3",
		"x notanumber",
		"{a=\"1\"} 3",
	} {
		if _, err := ParseMetrics(strings.NewReader(bad + "\n")); !errors.Is(err, ErrMetricsFormat) {
			t.Errorf("ParseMetrics(%q) err = %v, want ErrMetricsFormat", bad, err)
		}
	}
}

// BenchmarkProduceAcksAll produces b.N 1 KiB records with acks=all from 4
// franz-go clients (default linger and batching) to 6 partitions of one
// node with the fs store. Allocations are the whole process's: clients and
// node.
func BenchmarkProduceAcksAll(b *testing.B) {
	const size = 1024
	n := startNode(b, "bench", 6)
	l, err := NewLedger(b.N, size, uint64(b.N))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(size)
	b.ResetTimer()
	res, err := Produce(testCtx(b), n.KafkaAddr(), l, ProduceOptions{Topic: "bench", Producers: 4, TimeLimit: 2 * time.Minute})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if res.TimedOut {
		b.Fatalf("time limit reached after %d of %d records", res.Records, b.N)
	}
	b.ReportMetric(res.RecordsPerSec, "records/s")
	b.ReportMetric(float64(res.P50)/1e6, "p50_ms")
	b.ReportMetric(float64(res.P99)/1e6, "p99_ms")
}

// BenchmarkConsumeHot consumes b.N 1 KiB records (6 partitions) from the
// node that produced them, checking each, with one franz-go client.
func BenchmarkConsumeHot(b *testing.B) {
	const size = 1024
	n := startNode(b, "bench", 6)
	l, err := NewLedger(b.N, size, uint64(b.N))
	if err != nil {
		b.Fatal(err)
	}
	ctx := testCtx(b)
	if _, err := Produce(ctx, n.KafkaAddr(), l, ProduceOptions{Topic: "bench", Producers: 4, TimeLimit: 2 * time.Minute}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(size)
	b.ResetTimer()
	res, err := Consume(ctx, n.KafkaAddr(), l, ConsumeOptions{Topic: "bench", TimeLimit: 2 * time.Minute})
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(res.RecordsPerSec, "records/s")
}
