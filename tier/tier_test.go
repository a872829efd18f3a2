package tier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/segment/kbatch"
	"github.com/strata-io/strata/tier/objstore"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// etcd's client and embedded server keep a few process-wide goroutines.
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreAnyFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
	)
}

// env is one etcd + one object store shared by the tiers of a test.
type env struct {
	t      testing.TB
	etcd   *metadata.Embedded
	bucket *faultyBucket
	topic  string
}

func newEnv(t *testing.T, partitions int32) *env {
	t.Helper()
	return newEnvConfigs(t, partitions, nil)
}

func newEnvConfigs(t *testing.T, partitions int32, configs map[string]string) *env {
	t.Helper()
	return newEnvWith(t, partitions, configs, 0)
}

// newEnvWith starts the env's etcd with --max-txn-ops maxTxnOps (0: the
// embedded default) and creates the topic with configs.
func newEnvWith(t testing.TB, partitions int32, configs map[string]string, maxTxnOps uint) *env {
	t.Helper()
	ctx := context.Background()
	e, err := metadata.StartEmbedded(ctx, metadata.EmbeddedConfig{Dir: t.TempDir(), MaxTxnOps: maxTxnOps}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	b, err := objstore.Open(ctx, "file://"+filepath.Join(t.TempDir(), "objects"), objstore.Options{CreateBucket: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ev := &env{t: t, etcd: e, bucket: &faultyBucket{Bucket: b}, topic: "orders"}
	m := ev.meta()
	if _, err := m.CreateTopic(ctx, ev.topic, partitions, configs); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, ok := m.Topic(ev.topic); return ok })
	return ev
}

func (e *env) meta() *metadata.Store {
	e.t.Helper()
	m, err := metadata.Open(context.Background(), metadata.Config{Endpoints: e.etcd.Endpoints(), Cluster: "test"}, nil, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { m.Close() })
	return m
}

// tier starts a Tier with its own metadata Store (a "node") and data dir.
func (e *env) tier(cfg Config) *Tier {
	e.t.Helper()
	m := e.meta()
	waitFor(e.t, func() bool { _, ok := m.Topic(e.topic); return ok })
	if cfg.DataDir == "" {
		cfg.DataDir = e.t.TempDir()
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = 5 * time.Millisecond
	}
	if cfg.MaintenanceInterval == 0 {
		// Tests use old timestamps; retention must not run unless asked.
		cfg.MaintenanceInterval = time.Hour
	}
	tr, err := New(cfg, e.bucket, m, testLogger(e.t), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		tr.Close(ctx)
	})
	return tr
}

func (e *env) partition(tr *Tier, p int32) *Partition {
	e.t.Helper()
	part, err := tr.Partition(context.Background(), metadata.TP{Topic: e.topic, Partition: p})
	if err != nil {
		e.t.Fatal(err)
	}
	return part
}

// faultyBucket injects failures into Put: it fails the next failPuts calls,
// and blocks every Put while gate is set.
type faultyBucket struct {
	objstore.Bucket
	failPuts atomic.Int32
	puts     atomic.Int32
	mu       sync.Mutex
	gate     chan struct{}
}

func (f *faultyBucket) Put(ctx context.Context, key string, data []byte) error {
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.failPuts.Add(-1) >= 0 {
		return errors.New("injected: 503 SlowDown")
	}
	f.puts.Add(1)
	return f.Bucket.Put(ctx, key, data)
}

// block makes Puts wait until the returned func is called.
func (f *faultyBucket) block() (unblock func()) {
	ch := make(chan struct{})
	f.mu.Lock()
	f.gate = ch
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		f.gate = nil
		f.mu.Unlock()
		close(ch)
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func batch(t *testing.T, n int, prefix string, ts int64) ([]byte, kbatch.Header) {
	t.Helper()
	recs := make([]kbatch.Record, n)
	for i := range recs {
		recs[i] = kbatch.Record{
			Timestamp: ts + int64(i),
			Key:       []byte(fmt.Sprintf("k%d", i)),
			Value:     []byte(fmt.Sprintf("%s-%d", prefix, i)),
		}
	}
	b, err := kbatch.Build(recs, kbatch.BuildOptions{Codec: kbatch.None, ProducerID: -1, BaseTimestamp: ts})
	if err != nil {
		t.Fatal(err)
	}
	hs, err := kbatch.Validate(b)
	if err != nil {
		t.Fatal(err)
	}
	return b, hs[0]
}

// values decodes every record value in batches, in order.
func values(t *testing.T, batches []byte) []string {
	t.Helper()
	var out []string
	err := kbatch.Iterate(batches, func(h kbatch.Header, b []byte) error {
		if _, err := kbatch.Validate(b); err != nil {
			return fmt.Errorf("batch at %d fails validation: %w", h.BaseOffset, err)
		}
		recs, err := kbatch.Records(b)
		if err != nil {
			return err
		}
		for _, r := range recs {
			out = append(out, fmt.Sprintf("%d:%s", r.Offset, r.Value))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAppendIsDurableAndReadable(t *testing.T) {
	e := newEnv(t, 2)
	tr := e.tier(Config{})
	p := e.partition(tr, 0)
	ctx := context.Background()

	var want []string
	for i := 0; i < 5; i++ {
		b, h := batch(t, 3, fmt.Sprintf("b%d", i), 1000)
		base, wait, err := p.Append(ctx, b, h)
		if err != nil {
			t.Fatal(err)
		}
		if base != int64(i*3) {
			t.Fatalf("batch %d: base offset %d, want %d", i, base, i*3)
		}
		if err := wait(ctx); err != nil {
			t.Fatalf("wait: %v", err)
		}
		for j := 0; j < 3; j++ {
			want = append(want, fmt.Sprintf("%d:b%d-%d", i*3+j, i, j))
		}
	}
	if hw := p.HighWatermark(); hw != 15 {
		t.Fatalf("high watermark %d, want 15", hw)
	}
	res, err := p.Read(ctx, 0, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := values(t, res.Batches); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("read\n got %v\nwant %v", got, want)
	}
	// Reading from the middle starts at the batch holding the offset.
	res, err = p.Read(ctx, 7, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := values(t, res.Batches); len(got) != 9 || got[0] != "6:b2-0" {
		t.Fatalf("read from 7: %v", got)
	}
	// At the high watermark: nothing, no error. Beyond: out of range.
	if res, err := p.Read(ctx, 15, 1<<20, true); err != nil || len(res.Batches) != 0 {
		t.Fatalf("read at hw: %d bytes, %v", len(res.Batches), err)
	}
	if _, err := p.Read(ctx, 16, 1<<20, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read past hw: %v, want ErrOffsetOutOfRange", err)
	}
	// The committed state in etcd agrees.
	st, err := e.meta().PartitionState(ctx, metadata.TP{Topic: e.topic, Partition: 0})
	if err != nil || st.DurableOffset != 15 {
		t.Fatalf("etcd state %+v, %v; want durable offset 15", st, err)
	}
}

func TestReadNeverPassesHighWatermark(t *testing.T) {
	e := newEnv(t, 1)
	tr := e.tier(Config{})
	p := e.partition(tr, 0)
	ctx := context.Background()

	b, h := batch(t, 2, "durable", 1)
	_, wait, err := p.Append(ctx, b, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := wait(ctx); err != nil {
		t.Fatal(err)
	}
	unblock := e.bucket.block()
	b2, h2 := batch(t, 2, "pending", 2)
	_, wait2, err := p.Append(ctx, b2, h2)
	if err != nil {
		t.Fatal(err)
	}
	changed := p.Changed()
	res, err := p.Read(ctx, 0, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := values(t, res.Batches); len(got) != 2 || res.HighWatermark != 2 {
		t.Fatalf("read while flush blocked: %v hw %d; want only the 2 durable records", got, res.HighWatermark)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := wait2(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait while object store blocked: %v, want deadline exceeded", err)
	}
	unblock()
	if err := wait2(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("Changed channel not closed after the high watermark advanced")
	}
	res, err = p.Read(ctx, 2, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := values(t, res.Batches); fmt.Sprint(got) != "[2:pending-0 3:pending-1]" {
		t.Fatalf("read after flush: %v", got)
	}
}

func TestObjectStoreFailuresAreRetried(t *testing.T) {
	e := newEnv(t, 1)
	tr := e.tier(Config{})
	p := e.partition(tr, 0)
	ctx := context.Background()
	e.bucket.failPuts.Store(5)
	b, h := batch(t, 1, "x", 1)
	_, wait, err := p.Append(ctx, b, h)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := wait(wctx); err != nil {
		t.Fatalf("wait after transient put failures: %v", err)
	}
	if p.HighWatermark() != 1 {
		t.Fatalf("hw %d, want 1", p.HighWatermark())
	}
}

func TestNewNodeWithEmptyDiskServesHistory(t *testing.T) {
	e := newEnv(t, 3)
	ctx := context.Background()
	tr := e.tier(Config{})
	want := map[int32][]string{}
	for part := int32(0); part < 3; part++ {
		p := e.partition(tr, part)
		for i := 0; i < 4; i++ {
			b, h := batch(t, 2, fmt.Sprintf("p%d-b%d", part, i), int64(i))
			base, wait, err := p.Append(ctx, b, h)
			if err != nil {
				t.Fatal(err)
			}
			if err := wait(ctx); err != nil {
				t.Fatal(err)
			}
			want[part] = append(want[part], fmt.Sprintf("%d:p%d-b%d-0", base, part, i), fmt.Sprintf("%d:p%d-b%d-1", base+1, part, i))
		}
	}
	closeCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := tr.Close(closeCtx); err != nil {
		t.Fatal(err)
	}

	// A second node, empty data dir, same etcd and bucket.
	tr2 := e.tier(Config{})
	for part := int32(0); part < 3; part++ {
		p := e.partition(tr2, part)
		if p.HighWatermark() != 8 {
			t.Fatalf("partition %d: hw %d after takeover, want 8", part, p.HighWatermark())
		}
		res, err := p.Read(ctx, 0, 1<<20, true)
		if err != nil {
			t.Fatal(err)
		}
		if got := values(t, res.Batches); fmt.Sprint(got) != fmt.Sprint(want[part]) {
			t.Fatalf("partition %d after takeover:\n got %v\nwant %v", part, got, want[part])
		}
		// Offsets continue where the old leader stopped.
		b, h := batch(t, 1, "new", 9)
		base, wait, err := p.Append(ctx, b, h)
		if err != nil {
			t.Fatal(err)
		}
		if base != 8 {
			t.Fatalf("partition %d: new base offset %d, want 8", part, base)
		}
		if err := wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDeposedLeaderCannotCommit(t *testing.T) {
	e := newEnv(t, 1)
	ctx := context.Background()
	a := e.tier(Config{})
	pa := e.partition(a, 0)
	b1, h1 := batch(t, 1, "a1", 1)
	_, wait, err := pa.Append(ctx, b1, h1)
	if err != nil {
		t.Fatal(err)
	}
	if err := wait(ctx); err != nil {
		t.Fatal(err)
	}

	unblock := e.bucket.block()
	b2, h2 := batch(t, 1, "a2-lost", 2)
	_, waitA, err := pa.Append(ctx, b2, h2)
	if err != nil {
		t.Fatal(err)
	}
	// Node B takes the partition while A's flush is stuck in the PUT.
	bt := e.tier(Config{})
	pb := e.partition(bt, 0)
	if pb.LeaderEpoch() <= pa.LeaderEpoch() {
		t.Fatalf("new epoch %d not above old %d", pb.LeaderEpoch(), pa.LeaderEpoch())
	}
	unblock()
	if err := waitA(ctx); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("deposed leader's append: %v, want ErrNotLeader", err)
	}
	b3, h3 := batch(t, 1, "b1", 3)
	base, waitB, err := pb.Append(ctx, b3, h3)
	if err != nil {
		t.Fatal(err)
	}
	if err := waitB(ctx); err != nil {
		t.Fatal(err)
	}
	if base != 1 {
		t.Fatalf("new leader base %d, want 1 (the lost append never became visible)", base)
	}
	res, err := pb.Read(ctx, 0, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := values(t, res.Batches); fmt.Sprint(got) != "[0:a1-0 1:b1-0]" {
		t.Fatalf("log after takeover: %v", got)
	}
}

func TestBackpressureAboveBufferCeiling(t *testing.T) {
	e := newEnv(t, 1)
	tr := e.tier(Config{MaxBufferedBytes: 4096})
	p := e.partition(tr, 0)
	ctx := context.Background()
	unblock := e.bucket.block()
	defer unblock()
	var appended int
	for i := 0; i < 100; i++ {
		b, h := batch(t, 10, "fill-the-buffer-with-some-bytes", 1)
		actx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		_, _, err := p.Append(actx, b, h)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		appended++
	}
	if appended == 0 || appended == 100 {
		t.Fatalf("appended %d batches with a 4 KiB ceiling and a blocked object store; want some, then waiting", appended)
	}
}

func TestOffsetForTimestamp(t *testing.T) {
	e := newEnv(t, 1)
	tr := e.tier(Config{})
	p := e.partition(tr, 0)
	ctx := context.Background()
	// Three batches of 3 records: timestamps 100..102, 200..202, 300..302.
	for i := int64(1); i <= 3; i++ {
		b, h := batch(t, 3, "t", i*100)
		_, wait, err := p.Append(ctx, b, h)
		if err != nil {
			t.Fatal(err)
		}
		if err := wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		ts, off, gotTS int64
		found          bool
	}{
		{0, 0, 100, true}, {100, 0, 100, true}, {101, 1, 101, true}, {150, 3, 200, true},
		{202, 5, 202, true}, {250, 6, 300, true}, {302, 8, 302, true}, {303, 0, 0, false},
	} {
		off, ts, found, err := p.OffsetForTimestamp(ctx, c.ts)
		if err != nil {
			t.Fatal(err)
		}
		if found != c.found || (found && (off != c.off || ts != c.gotTS)) {
			t.Errorf("OffsetForTimestamp(%d) = %d, %d, %v; want %d, %d, %v", c.ts, off, ts, found, c.off, c.gotTS, c.found)
		}
	}
}

func TestReadRespectsMaxBytes(t *testing.T) {
	e := newEnv(t, 1)
	tr := e.tier(Config{})
	p := e.partition(tr, 0)
	ctx := context.Background()
	var size int
	for i := 0; i < 4; i++ {
		b, h := batch(t, 5, "sized", 1)
		size = len(b)
		_, wait, err := p.Append(ctx, b, h)
		if err != nil {
			t.Fatal(err)
		}
		if err := wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	res, err := p.Read(ctx, 0, 2*size+1, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Batches) != 2*size {
		t.Fatalf("read %d bytes with limit %d; want exactly 2 batches (%d)", len(res.Batches), 2*size+1, 2*size)
	}
	res, err = p.Read(ctx, 0, 1, true)
	if err != nil || len(res.Batches) != size {
		t.Fatalf("minOne read: %d bytes, %v; want one whole batch (%d)", len(res.Batches), err, size)
	}
	res, err = p.Read(ctx, 0, 1, false)
	if err != nil || len(res.Batches) != 0 {
		t.Fatalf("read without minOne: %d bytes, %v; want none", len(res.Batches), err)
	}
}

// testLogger logs through t.Log, so a failing test shows what the tier said.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestOnlyTheAssignedNodeLeads(t *testing.T) {
	// 32 partitions: rendezvous hashing of a random topic id puts 8 of them
	// all on one of two nodes once in 128 runs, 32 once in 2^31.
	const parts = 32
	e := newEnv(t, parts)
	ctx := context.Background()
	tiers := map[int32]*Tier{}
	for id := int32(1); id <= 2; id++ {
		m := e.meta()
		if err := m.RegisterNode(ctx, metadata.Node{ID: id, Host: "127.0.0.1", Port: 9000 + id}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { _, ok := m.Topic(e.topic); return ok })
		tr, err := New(Config{DataDir: t.TempDir(), NodeID: id, FlushInterval: 5 * time.Millisecond, MaintenanceInterval: time.Hour}, e.bucket, m, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close(context.Background()) })
		tiers[id] = tr
	}
	for _, tr := range tiers {
		waitFor(t, func() bool { return len(tr.meta.Nodes()) == 2 })
	}
	owners := map[int32]int{}
	for part := int32(0); part < parts; part++ {
		tp := metadata.TP{Topic: e.topic, Partition: part}
		want, ok := tiers[1].meta.AssignedNode(tp)
		if !ok {
			t.Fatal("no assigned node")
		}
		owners[want.ID]++
		for id, tr := range tiers {
			_, err := tr.Partition(ctx, tp)
			if id == want.ID && err != nil {
				t.Fatalf("partition %d on its assigned node %d: %v", part, id, err)
			}
			if id != want.ID && !errors.Is(err, ErrNotLeader) {
				t.Fatalf("partition %d on node %d (assigned to %d): %v, want ErrNotLeader", part, id, want.ID, err)
			}
		}
	}
	if owners[1] == 0 || owners[2] == 0 {
		t.Fatalf("%d partitions all on one node: %v", parts, owners)
	}
}

func TestTopicDeletedElsewhereIsDropped(t *testing.T) {
	e := newEnv(t, 1)
	tr := e.tier(Config{MaintenanceInterval: 10 * time.Millisecond})
	p := e.partition(tr, 0)
	fill(t, p, 1, "x", time.Now().UnixMilli())
	// Another node deletes the topic: this tier never hears DropTopic.
	if err := e.meta().DeleteTopic(context.Background(), e.topic); err != nil {
		t.Fatal(err)
	}
	waitFor(t, p.isClosed)
	b, h := batch(t, 1, "late", 1)
	if _, _, err := p.Append(context.Background(), b, h); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("append to a deleted topic's partition: %v, want ErrNotLeader", err)
	}
	// close removes the folder just after marking the partition closed.
	waitFor(t, func() bool { _, err := os.Stat(p.dir); return os.IsNotExist(err) })
}
