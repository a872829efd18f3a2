package tier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/segment/kbatch"
)

// idemBatch builds an idempotent producer's batch of n records.
func idemBatch(t *testing.T, pid int64, epoch int16, seq int32, n int, tag string) ([]byte, kbatch.Header) {
	t.Helper()
	recs := make([]kbatch.Record, n)
	for i := range recs {
		recs[i] = kbatch.Record{Timestamp: 1, Value: []byte(fmt.Sprintf("%s-%d", tag, i))}
	}
	b, err := kbatch.Build(recs, kbatch.BuildOptions{Codec: kbatch.None, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq, BaseTimestamp: 1})
	if err != nil {
		t.Fatal(err)
	}
	hs, err := kbatch.Validate(b)
	if err != nil {
		t.Fatal(err)
	}
	return b, hs[0]
}

func appendWait(t *testing.T, p *Partition, b []byte, h kbatch.Header) (int64, error) {
	t.Helper()
	ctx := context.Background()
	base, wait, err := p.Append(ctx, b, h)
	if err != nil {
		return 0, err
	}
	return base, wait(ctx)
}

func TestIdempotentProducerDedupAndOrdering(t *testing.T) {
	e := newEnv(t, 1)
	tr := e.tier(Config{})
	p := e.partition(tr, 0)

	b0, h0 := idemBatch(t, 7, 0, 0, 3, "a")
	if base, err := appendWait(t, p, b0, h0); err != nil || base != 0 {
		t.Fatalf("first batch: base %d, %v", base, err)
	}
	b1, h1 := idemBatch(t, 7, 0, 3, 2, "b")
	if base, err := appendWait(t, p, b1, h1); err != nil || base != 3 {
		t.Fatalf("second batch: base %d, %v", base, err)
	}
	// A retry of the first batch: its original offset, stored once.
	r0, rh0 := idemBatch(t, 7, 0, 0, 3, "a")
	if base, err := appendWait(t, p, r0, rh0); err != nil || base != 0 {
		t.Fatalf("retried batch: base %d, %v; want 0, nil", base, err)
	}
	// A gap in sequences.
	g, gh := idemBatch(t, 7, 0, 9, 1, "gap")
	if _, err := appendWait(t, p, g, gh); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("gap: %v, want ErrOutOfOrderSequence", err)
	}
	// A bumped epoch starts again at 0; the old epoch is then fenced.
	n, nh := idemBatch(t, 7, 1, 0, 1, "c")
	if base, err := appendWait(t, p, n, nh); err != nil || base != 5 {
		t.Fatalf("new epoch: base %d, %v", base, err)
	}
	o, oh := idemBatch(t, 7, 0, 5, 1, "old")
	if _, err := appendWait(t, p, o, oh); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("old epoch: %v, want ErrInvalidProducerEpoch", err)
	}
	if hw := p.HighWatermark(); hw != 6 {
		t.Fatalf("high watermark %d, want 6 (3+2+1, duplicates and rejects stored nothing)", hw)
	}
	res, err := p.Read(context.Background(), 0, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := values(t, res.Batches); fmt.Sprint(got) != "[0:a-0 1:a-1 2:a-2 3:b-0 4:b-1 5:c-0]" {
		t.Fatalf("log: %v", got)
	}
}

func TestProducerStateSurvivesTakeover(t *testing.T) {
	e := newEnv(t, 1)
	tr := e.tier(Config{})
	p := e.partition(tr, 0)
	for i := int32(0); i < 7; i++ {
		b, h := idemBatch(t, 42, 3, i*2, 2, fmt.Sprintf("r%d", i))
		if _, err := appendWait(t, p, b, h); err != nil {
			t.Fatal(err)
		}
	}
	// Another node takes over with an empty disk.
	tr2 := e.tier(Config{})
	p2 := e.partition(tr2, 0)
	// The producer's retry of its last in-flight batch is recognised.
	b, h := idemBatch(t, 42, 3, 12, 2, "r6")
	if base, err := appendWait(t, p2, b, h); err != nil || base != 12 {
		t.Fatalf("retry after takeover: base %d, %v; want 12, nil", base, err)
	}
	// And the next sequence continues; a gap is still a gap.
	b, h = idemBatch(t, 42, 3, 14, 1, "r7")
	if base, err := appendWait(t, p2, b, h); err != nil || base != 14 {
		t.Fatalf("next after takeover: base %d, %v", base, err)
	}
	b, h = idemBatch(t, 42, 3, 20, 1, "gap")
	if _, err := appendWait(t, p2, b, h); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("gap after takeover: %v", err)
	}
	if hw := p2.HighWatermark(); hw != 15 {
		t.Fatalf("high watermark %d, want 15", hw)
	}
}

// newEnvTxnOps is newEnv with an etcd whose --max-txn-ops is maxTxnOps.
func newEnvTxnOps(t *testing.T, partitions int32, maxTxnOps uint) *env {
	t.Helper()
	return newEnvWith(t, partitions, nil, maxTxnOps)
}

// stallFlusher makes the flusher take one batch appended to p and wait in
// its object-store Put until unblock is called: whatever is appended
// meanwhile is pending, for the flushes after it. It returns the batch's
// wait.
func stallFlusher(t *testing.T, e *env, p *Partition) (unblock func(), wait func(context.Context) error) {
	t.Helper()
	unblock = e.bucket.block()
	b, h := batch(t, 1, "stall", 1)
	_, wait, err := p.Append(context.Background(), b, h)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.blocks) == 0
	})
	return unblock, wait
}

// waitAll waits for every append, failing the test on the first error or
// when they are not durable within d.
func waitAll(t *testing.T, waits []func(context.Context) error, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for i, w := range waits {
		if err := w(ctx); err != nil {
			t.Fatalf("append %d of %d: %v", i, len(waits), err)
		}
	}
}

// checkProducerHistory replays every etcd write under partition p's keys
// and checks each commit that wrote producer keys: it also moved the
// durable offset (same transaction), it wrote at most maxPerCommit producer
// keys, and no batch it recorded lies at or past its new durable offset (a
// new leader would otherwise answer a retry with an offset that was never
// made durable). It returns how many producer keys were written.
func checkProducerHistory(t *testing.T, e *env, p int32, maxPerCommit int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m := e.meta()
	topic, _ := m.Topic(e.topic)
	prefix := fmt.Sprintf("/test/partitions/%s/%d/", topic.ID, p)
	cli, err := clientv3.New(clientv3.Config{Endpoints: e.etcd.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	cur, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	type commit struct {
		durable   int64
		producers []*mvccpb.KeyValue
	}
	byRev := map[int64]*commit{}
	wc := cli.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(1))
	for last := int64(0); last < cur.Header.Revision; {
		resp, ok := <-wc
		if !ok || resp.Err() != nil {
			t.Fatalf("watch: %v", resp.Err())
		}
		for _, ev := range resp.Events {
			last = ev.Kv.ModRevision
			c := byRev[last]
			if c == nil {
				c = &commit{durable: -1}
				byRev[last] = c
			}
			k := strings.TrimPrefix(string(ev.Kv.Key), prefix)
			switch {
			case ev.Type != clientv3.EventTypePut:
			case k == "durable":
				c.durable, _ = strconv.ParseInt(string(ev.Kv.Value), 10, 64)
			case strings.HasPrefix(k, "producers/"):
				c.producers = append(c.producers, ev.Kv)
			}
		}
		if len(resp.Events) == 0 {
			last = resp.Header.Revision
		}
	}
	written := 0
	for rev, c := range byRev {
		if len(c.producers) == 0 {
			continue
		}
		written += len(c.producers)
		if c.durable < 0 {
			t.Errorf("revision %d wrote %d producer keys without a durable offset", rev, len(c.producers))
			continue
		}
		if len(c.producers) > maxPerCommit {
			t.Errorf("revision %d wrote %d producer keys, want at most %d", rev, len(c.producers), maxPerCommit)
		}
		for _, kv := range c.producers {
			var st producerState
			if err := json.Unmarshal(kv.Value, &st); err != nil {
				t.Fatalf("%s: %v", kv.Key, err)
			}
			for _, b := range st.Batches {
				if b.Last >= c.durable {
					t.Errorf("revision %d: %s records a batch at [%d, %d], not durable (durable offset %d)", rev, kv.Key, b.Base, b.Last, c.durable)
				}
			}
		}
	}
	return written
}

// Issue 7, case c: thousands of short-lived idempotent producers on one
// partition. Each flush commit carries only the producers that appended in
// it, at most MaxCommitProducers, and a new leader knows them all.
func TestManyProducersCommitOnlyTheirDeltas(t *testing.T) {
	e := newEnv(t, 1)
	tr := e.tier(Config{})
	p := e.partition(tr, 0)
	ctx := context.Background()
	const n = 8000 // the whole state of 8000 producers was over 512 KiB
	waits := make([]func(context.Context) error, 0, n)
	for i := range n {
		b, h := idemBatch(t, int64(5000+i), 0, 0, 1, fmt.Sprintf("p%d", i))
		base, wait, err := p.Append(ctx, b, h)
		if err != nil || base != int64(i) {
			t.Fatalf("append %d: base %d, %v", i, base, err)
		}
		waits = append(waits, wait)
	}
	waitAll(t, waits, time.Minute)
	if hw := p.HighWatermark(); hw != n {
		t.Fatalf("high watermark %d, want %d", hw, n)
	}
	budget := e.meta().MaxCommitProducers()
	if written := checkProducerHistory(t, e, 0, budget); written != n {
		t.Errorf("%d producer keys written, want %d (one per producer)", written, n)
	}

	// A new leader knows every producer: retries are answered with their
	// original offsets and store nothing.
	tr2 := e.tier(Config{})
	p2 := e.partition(tr2, 0)
	if got := len(p2.Producers()); got != n {
		t.Fatalf("new leader knows %d producers, want %d", got, n)
	}
	for _, i := range []int{0, 1, 4999, n - 1} {
		b, h := idemBatch(t, int64(5000+i), 0, 0, 1, fmt.Sprintf("p%d", i))
		if base, err := appendWait(t, p2, b, h); err != nil || base != int64(i) {
			t.Fatalf("retry of producer %d after takeover: base %d, %v; want %d", i, base, err, i)
		}
	}
	if hw := p2.HighWatermark(); hw != n {
		t.Fatalf("high watermark %d after retries, want %d", hw, n)
	}
}

// A producer with batches in two flush groups: the first group's commit
// records only its first batch, the second the rest; a new leader
// recognises a retry of either.
func TestProducerStateFollowsSealedGroups(t *testing.T) {
	e := newEnv(t, 1)
	tr := e.tier(Config{})
	p := e.partition(tr, 0)
	ctx := context.Background()
	budget := e.meta().MaxCommitProducers()
	unblock, w := stallFlusher(t, e, p) // everything lands in pending groups first
	waits := []func(context.Context) error{w}
	appendOne := func(pid int64, seq int32, tag string) int64 {
		b, h := idemBatch(t, pid, 0, seq, 2, tag)
		base, w, err := p.Append(ctx, b, h)
		if err != nil {
			t.Fatal(err)
		}
		waits = append(waits, w)
		return base
	}
	const a = 1
	appendOne(a, 0, "a0") // group 1
	for i := range budget {
		appendOne(int64(100+i), 0, "x") // the last one seals group 1
	}
	a1 := appendOne(a, 2, "a1") // group 2
	a2 := appendOne(a, 4, "a2") // group 2
	for i := range budget {
		appendOne(int64(1000+i), 0, "y") // seals group 2; the last ones in group 3
	}
	unblock()
	waitAll(t, waits, time.Minute)
	checkProducerHistory(t, e, 0, budget)

	tr2 := e.tier(Config{})
	p2 := e.partition(tr2, 0)
	b, h := idemBatch(t, a, 0, 2, 2, "a1")
	if base, err := appendWait(t, p2, b, h); err != nil || base != a1 {
		t.Fatalf("retry of a1: base %d, %v; want %d", base, err, a1)
	}
	b, h = idemBatch(t, a, 0, 4, 2, "a2")
	if base, err := appendWait(t, p2, b, h); err != nil || base != a2 {
		t.Fatalf("retry of a2: base %d, %v; want %d", base, err, a2)
	}
	hw := p2.HighWatermark()
	b, h = idemBatch(t, a, 0, 6, 1, "a3")
	if base, err := appendWait(t, p2, b, h); err != nil || base != hw {
		t.Fatalf("next batch of a: base %d, %v; want %d", base, err, hw)
	}
}

// Idle producers are forgotten after ProducerIDExpiration, in memory and in
// etcd; an active one is kept.
func TestProducersExpire(t *testing.T) {
	e := newEnv(t, 1)
	// Long enough that 20 appends on a loaded CI machine finish well
	// within it (the count of 20 below must see none expired yet).
	const expiry = 3 * time.Second
	tr := e.tier(Config{ProducerIDExpiration: expiry})
	p := e.partition(tr, 0)
	for i := range 20 {
		b, h := idemBatch(t, int64(10+i), 0, 0, 1, "idle")
		if _, err := appendWait(t, p, b, h); err != nil {
			t.Fatal(err)
		}
	}
	m := e.meta()
	topic, _ := m.Topic(e.topic)
	l := metadata.Leadership{TP: p.tp, TopicID: topic.ID}
	if st, err := m.PartitionProducers(context.Background(), l); err != nil || len(st) != 20 {
		t.Fatalf("%d producer keys, %v; want 20", len(st), err)
	}
	// One producer stays active, the others go idle.
	deadline := time.Now().Add(10 * expiry)
	seq := int32(1)
	for {
		b, h := idemBatch(t, 10, 0, seq, 1, "active")
		if _, err := appendWait(t, p, b, h); err != nil {
			t.Fatal(err)
		}
		seq++
		st, err := m.PartitionProducers(context.Background(), l)
		if err != nil {
			t.Fatal(err)
		}
		if len(st) == 1 && st[10] != nil && len(p.Producers()) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %d producer keys, %d producers in memory; want 1", 10*expiry, len(st), len(p.Producers()))
		}
		time.Sleep(expiry / 8)
	}
	// An expired producer is unknown: any sequence is accepted.
	b, h := idemBatch(t, 11, 0, 7, 1, "back")
	if _, err := appendWait(t, p, b, h); err != nil {
		t.Fatalf("expired producer writes again: %v", err)
	}
	if st, _ := m.PartitionProducers(context.Background(), l); st[11] == nil {
		t.Fatal("the returning producer's state was not written")
	}
	// A new leader loads only the live producers.
	tr2 := e.tier(Config{ProducerIDExpiration: time.Hour})
	if got := len(e.partition(tr2, 0).Producers()); got != 2 {
		t.Fatalf("new leader knows %d producers, want 2", got)
	}
}

// A commit etcd refuses for good (here "too many operations in txn request":
// the etcd allows 8 per transaction, the Store believes 128) fails the
// appends of its partition and closes it, once; the other partitions of the
// same flush commit, and later flushes go on.
func TestPermanentCommitErrorFailsOnlyItsPartition(t *testing.T) {
	e := newEnvTxnOps(t, 3, 8)
	tr := e.tier(Config{})
	ctx := context.Background()
	parts := []*Partition{e.partition(tr, 0), e.partition(tr, 1), e.partition(tr, 2)}
	unblock, _ := stallFlusher(t, e, parts[2]) // then one flush with all three partitions
	var waits [3][]func(context.Context) error
	for i := range 10 { // partition 0: 10 producers, 13 operations
		b, h := idemBatch(t, int64(100+i), 0, 0, 1, "many")
		_, w, err := parts[0].Append(ctx, b, h)
		if err != nil {
			t.Fatal(err)
		}
		waits[0] = append(waits[0], w)
	}
	for _, pi := range []int{1, 2} { // plain batches: 3 operations each
		b, h := batch(t, 2, "plain", 1)
		_, w, err := parts[pi].Append(ctx, b, h)
		if err != nil {
			t.Fatal(err)
		}
		waits[pi] = append(waits[pi], w)
	}
	unblock()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, w := range waits[0] {
		if err := w(wctx); !errors.Is(err, ErrStorage) {
			t.Fatalf("append to the refused partition: %v, want ErrStorage", err)
		}
	}
	if !parts[0].isClosed() {
		t.Fatal("the refused partition is still open")
	}
	for pi, want := range map[int]int64{1: 2, 2: 3} {
		if err := waits[pi][0](wctx); err != nil {
			t.Fatalf("partition %d: %v", pi, err)
		}
		if hw := parts[pi].HighWatermark(); hw != want {
			t.Fatalf("partition %d: high watermark %d, want %d", pi, hw, want)
		}
	}
	// The flusher is not stuck: later appends commit.
	b, h := batch(t, 1, "later", 2)
	if _, err := appendWait(t, parts[1], b, h); err != nil {
		t.Fatal(err)
	}
	// Reopened, partition 0 starts from its durable state (nothing).
	p0 := e.partition(tr, 0)
	if p0 == parts[0] || p0.HighWatermark() != 0 {
		t.Fatalf("reopened partition 0: high watermark %d", p0.HighWatermark())
	}
}
