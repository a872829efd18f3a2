package metadata

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// testEntry is an index entry for offsets [base, last].
func testEntry(base, last int64) IndexEntry {
	return IndexEntry{
		BaseOffset: base, LastOffset: last, MaxTimestamp: 1000 + last,
		Object: fmt.Sprintf("flush/%020d", base), Position: base * 100, Size: (last - base + 1) * 100,
		Records: last - base + 1,
	}
}

// sameState compares states (PartitionState holds a slice, so != does not).
func sameState(a, b PartitionState) bool {
	return a.DurableOffset == b.DurableOffset && a.LogStartOffset == b.LogStartOffset &&
		a.LeaderEpoch == b.LeaderEpoch && bytes.Equal(a.Producers, b.Producers)
}

func commitOf(l Leadership, base, last int64) PartitionCommit {
	return PartitionCommit{Leadership: l, Entry: testEntry(base, last), DurableOffset: last + 1}
}

func mustTopic(t *testing.T, s *Store, name string, partitions int32) Topic {
	t.Helper()
	tp, err := s.CreateTopic(testCtx(t), name, partitions, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

func TestAcquireLeadershipEpochs(t *testing.T) {
	ctx := testCtx(t)
	a := openStore(t, nil, nil)
	topic := mustTopic(t, a, "events", 2)
	tp := TP{"events", 1}

	var prev Leadership
	for i := range 3 {
		l, err := a.AcquireLeadership(ctx, tp, 7)
		if err != nil {
			t.Fatal(err)
		}
		if l.Epoch != int32(i) || l.NodeID != 7 || l.TopicID != topic.ID || l.TP != tp {
			t.Fatalf("acquire %d = %+v", i, l)
		}
		if l.Revision <= prev.Revision {
			t.Fatalf("revision %d not above %d", l.Revision, prev.Revision)
		}
		if got, ok := a.Leader(tp); !ok || got != l {
			t.Fatalf("Leader = %+v, %v; want %+v", got, ok, l)
		}
		prev = l
	}
	// The other partition has its own epochs.
	if l, err := a.AcquireLeadership(ctx, TP{"events", 0}, 7); err != nil || l.Epoch != 0 {
		t.Fatalf("other partition = %+v, %v", l, err)
	}

	// A new Store (a restarted node) continues the sequence, and another
	// Store sees the leader through its watch.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b := openStore(t, nil, nil)
	if _, ok := b.Leader(tp); ok {
		t.Fatal("leader key survived its Store's Close (lease revoke)")
	}
	l, err := b.AcquireLeadership(ctx, tp, 8)
	if err != nil {
		t.Fatal(err)
	}
	if l.Epoch != prev.Epoch+1 {
		t.Fatalf("epoch after restart = %d, want %d", l.Epoch, prev.Epoch+1)
	}
	c := openStore(t, nil, nil)
	if got, ok := c.Leader(tp); !ok || got != l {
		t.Fatalf("c.Leader = %+v, %v; want %+v", got, ok, l)
	}
	l2, err := c.AcquireLeadership(ctx, tp, 9)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "b sees c's leadership", func() bool { got, ok := b.Leader(tp); return ok && got == l2 })

	for _, bad := range []TP{{"events", 2}, {"events", -1}, {"nope", 0}, {"bad/name", 0}} {
		if _, err := b.AcquireLeadership(ctx, bad, 1); !errors.Is(err, ErrUnknownTopic) {
			t.Errorf("AcquireLeadership(%v): err = %v, want ErrUnknownTopic", bad, err)
		}
		if _, err := b.PartitionState(ctx, bad); !errors.Is(err, ErrUnknownTopic) {
			t.Errorf("PartitionState(%v): err = %v, want ErrUnknownTopic", bad, err)
		}
	}
}

// Concurrent acquisitions from two Stores never hand out one epoch twice.
func TestAcquireLeadershipConcurrent(t *testing.T) {
	ctx := testCtx(t)
	stores := []*Store{openStore(t, nil, nil), openStore(t, nil, nil)}
	mustTopic(t, stores[0], "hot", 1)
	tp := TP{"hot", 0}
	const perStore = 10
	var (
		mu     sync.Mutex
		epochs []int32
		wg     sync.WaitGroup
		errs   = make(chan error, 2*perStore)
	)
	for i, s := range stores {
		for range perStore {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l, err := s.AcquireLeadership(ctx, tp, int32(i))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				epochs = append(epochs, l.Epoch)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	slices.Sort(epochs)
	for i, e := range epochs {
		if e != int32(i) {
			t.Fatalf("epochs = %v, want 0..%d each once", epochs, 2*perStore-1)
		}
	}
}

func TestCommitFlush(t *testing.T) {
	ctx := testCtx(t)
	a := openStore(t, nil, nil)
	b := openStore(t, nil, nil)
	mustTopic(t, a, "logs", 2)
	p0, p1 := TP{"logs", 0}, TP{"logs", 1}
	l0, err := a.AcquireLeadership(ctx, p0, 1)
	if err != nil {
		t.Fatal(err)
	}
	l1, err := a.AcquireLeadership(ctx, p1, 1)
	if err != nil {
		t.Fatal(err)
	}

	first := []PartitionCommit{commitOf(l0, 0, 9), commitOf(l1, 0, 0)}
	if fenced, err := a.CommitFlush(ctx, first); err != nil || fenced != nil {
		t.Fatalf("CommitFlush = %v, %v", fenced, err)
	}
	// Visible in the committing Store as soon as CommitFlush returns.
	if es := a.IndexEntries(p0, 0); len(es) != 1 || es[0] != testEntry(0, 9) {
		t.Fatalf("a.IndexEntries = %+v", es)
	}
	second := []PartitionCommit{commitOf(l0, 10, 24), commitOf(l1, 1, 5)}
	if fenced, err := a.CommitFlush(ctx, second); err != nil || fenced != nil {
		t.Fatalf("CommitFlush = %v, %v", fenced, err)
	}
	for _, tc := range []struct {
		tp   TP
		from int64
		want []IndexEntry
	}{
		{p0, 0, []IndexEntry{testEntry(0, 9), testEntry(10, 24)}},
		{p0, 9, []IndexEntry{testEntry(0, 9), testEntry(10, 24)}},
		{p0, 10, []IndexEntry{testEntry(10, 24)}},
		{p0, 24, []IndexEntry{testEntry(10, 24)}},
		{p0, 25, nil},
		{p1, 3, []IndexEntry{testEntry(1, 5)}},
		{TP{"logs", 7}, 0, nil},
		{TP{"nope", 0}, 0, nil},
	} {
		if got := a.IndexEntries(tc.tp, tc.from); !slices.Equal(got, tc.want) {
			t.Errorf("a.IndexEntries(%v, %d) = %+v, want %+v", tc.tp, tc.from, got, tc.want)
		}
		eventually(t, "b's index", func() bool { return slices.Equal(b.IndexEntries(tc.tp, tc.from), tc.want) })
	}
	for _, s := range []*Store{a, b} {
		ps, err := s.PartitionState(ctx, p0)
		if err != nil || !sameState(ps, PartitionState{DurableOffset: 25, LeaderEpoch: l0.Epoch}) {
			t.Fatalf("state p0 = %+v, %v", ps, err)
		}
		ps, err = s.PartitionState(ctx, p1)
		if err != nil || !sameState(ps, PartitionState{DurableOffset: 6, LeaderEpoch: l1.Epoch}) {
			t.Fatalf("state p1 = %+v, %v", ps, err)
		}
	}

	// Retrying a commit whose outcome the caller did not learn is safe: it
	// counts as committed and moves nothing back.
	if fenced, err := a.CommitFlush(ctx, first); err != nil || fenced != nil {
		t.Fatalf("retried CommitFlush = %v, %v", fenced, err)
	}
	if ps, _ := a.PartitionState(ctx, p0); ps.DurableOffset != 25 {
		t.Fatalf("retry moved the durable offset to %d", ps.DurableOffset)
	}
	// Two commits of one partition in one call apply in order.
	if fenced, err := a.CommitFlush(ctx, []PartitionCommit{commitOf(l0, 25, 29), commitOf(l0, 30, 31)}); err != nil || fenced != nil {
		t.Fatalf("CommitFlush = %v, %v", fenced, err)
	}
	if ps, _ := a.PartitionState(ctx, p0); ps.DurableOffset != 32 {
		t.Fatalf("durable after two commits of one partition = %d, want 32", ps.DurableOffset)
	}
	if n := len(a.IndexEntries(p0, 0)); n != 4 {
		t.Fatalf("%d index entries, want 4", n)
	}

	// Producer states go to per-producer keys with the durable offset; a
	// commit carries only the producers that changed, and the others stay.
	withProducers := commitOf(l1, 6, 7)
	withProducers.Producers = []byte(`{"1000":{"epoch":0,"seq":41},"7":{"epoch":2}}`)
	if f, err := a.CommitFlush(ctx, []PartitionCommit{withProducers}); err != nil || f != nil {
		t.Fatalf("CommitFlush = %v, %v", f, err)
	}
	if ps, err := b.PartitionState(ctx, p1); err != nil || !sameState(ps, PartitionState{DurableOffset: 8, LeaderEpoch: l1.Epoch}) {
		t.Fatalf("state with producers = %+v (%s), %v", ps, ps.Producers, err)
	}
	delta := commitOf(l1, 8, 8)
	delta.Producers = []byte(`{"1000":{"epoch":0,"seq":42}}`)
	if f, err := a.CommitFlush(ctx, []PartitionCommit{delta, commitOf(l1, 9, 9)}); err != nil || f != nil {
		t.Fatalf("CommitFlush = %v, %v", f, err)
	}
	if ps, err := b.PartitionState(ctx, p1); err != nil || ps.Producers != nil || ps.DurableOffset != 10 {
		t.Fatalf("state after a commit without producers = %+v, %v", ps, err)
	}
	got, err := b.PartitionProducers(ctx, l1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || string(got[1000]) != `{"epoch":0,"seq":42}` || string(got[7]) != `{"epoch":2}` {
		t.Fatalf("producers = %v", got)
	}
}

// Large producer states split a flush by bytes, under etcd's request size
// limit (1.5 MiB by default), not only by operation count.
func TestCommitFlushByteBudget(t *testing.T) {
	ctx := testCtx(t)
	s := openStore(t, nil, nil)
	const n = 8
	mustTopic(t, s, "big", n)
	states := bigProducerStates(s.MaxCommitProducers(), MaxProducerStateBytes-100)
	commits := make([]PartitionCommit, n)
	ls := make([]Leadership, n)
	for p := range int32(n) {
		l, err := s.AcquireLeadership(ctx, TP{"big", p}, 1)
		if err != nil {
			t.Fatal(err)
		}
		ls[p] = l
		commits[p] = commitOf(l, 0, 0)
		commits[p].Producers = states
	}
	if f, err := s.CommitFlush(ctx, commits); err != nil || f != nil {
		t.Fatalf("CommitFlush = %v, %v", f, err)
	}
	for p := range int32(n) {
		ps, err := s.PartitionState(ctx, TP{"big", p})
		if err != nil || ps.DurableOffset != 1 {
			t.Fatalf("partition %d: durable %d, %v", p, ps.DurableOffset, err)
		}
		got, err := s.PartitionProducers(ctx, ls[p])
		if err != nil || len(got) != s.MaxCommitProducers() {
			t.Fatalf("partition %d: %d producers, %v", p, len(got), err)
		}
	}
}

// bigProducerStates is a producers JSON object of n producers (ids 0..n-1)
// whose states are strings of size bytes.
func bigProducerStates(n, size int) []byte {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"%d":"%s"`, i, strings.Repeat("p", size-2))
	}
	b.WriteString("}")
	return []byte(b.String())
}

func TestCommitFlushInvalid(t *testing.T) {
	ctx := testCtx(t)
	s := openStore(t, nil, nil)
	mustTopic(t, s, "v", 1)
	l, err := s.AcquireLeadership(ctx, TP{"v", 0}, 1)
	if err != nil {
		t.Fatal(err)
	}
	good := commitOf(l, 0, 9)
	for name, mod := range map[string]func(*PartitionCommit){
		"no leadership":       func(c *PartitionCommit) { c.Leadership = Leadership{} },
		"negative base":       func(c *PartitionCommit) { c.Entry.BaseOffset = -1 },
		"last before base":    func(c *PartitionCommit) { c.Entry.LastOffset = -1 },
		"durable too small":   func(c *PartitionCommit) { c.DurableOffset = 9 },
		"durable too big":     func(c *PartitionCommit) { c.DurableOffset = 11 },
		"no object":           func(c *PartitionCommit) { c.Entry.Object = "" },
		"empty run":           func(c *PartitionCommit) { c.Entry.Size = 0 },
		"producers not JSON":  func(c *PartitionCommit) { c.Producers = []byte("{") },
		"producers no object": func(c *PartitionCommit) { c.Producers = []byte(`[1]`) },
		"producer id":         func(c *PartitionCommit) { c.Producers = []byte(`{"07":{}}`) },
		"negative producer":   func(c *PartitionCommit) { c.Producers = []byte(`{"-1":{}}`) },
		"producer too big": func(c *PartitionCommit) {
			c.Producers = bigProducerStates(1, MaxProducerStateBytes+1)
		},
		"too many producers": func(c *PartitionCommit) {
			c.Producers = bigProducerStates(s.MaxCommitProducers()+1, 10)
		},
	} {
		bad := good
		mod(&bad)
		// The bad commit comes second: nothing, not even the good one, may
		// be written.
		if _, err := s.CommitFlush(ctx, []PartitionCommit{good, bad}); !errors.Is(err, ErrInvalidCommit) {
			t.Errorf("%s: err = %v, want ErrInvalidCommit", name, err)
		}
	}
	if ps, _ := s.PartitionState(ctx, TP{"v", 0}); ps.DurableOffset != 0 {
		t.Fatalf("an invalid call wrote: durable %d", ps.DurableOffset)
	}
	if fenced, err := s.CommitFlush(ctx, nil); fenced != nil || err != nil {
		t.Fatalf("empty CommitFlush = %v, %v", fenced, err)
	}
}

// Store A leads two partitions; B takes one of them. A's next flush commits
// the partition it still leads and reports the other fenced.
func TestCommitFlushFencing(t *testing.T) {
	ctx := testCtx(t)
	a := openStore(t, nil, nil)
	b := openStore(t, nil, nil)
	mustTopic(t, a, "fence", 2)
	p0, p1 := TP{"fence", 0}, TP{"fence", 1}
	a0, err := a.AcquireLeadership(ctx, p0, 1)
	if err != nil {
		t.Fatal(err)
	}
	a1, err := a.AcquireLeadership(ctx, p1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if f, err := a.CommitFlush(ctx, []PartitionCommit{commitOf(a0, 0, 4), commitOf(a1, 0, 4)}); err != nil || f != nil {
		t.Fatalf("CommitFlush = %v, %v", f, err)
	}

	b0, err := b.AcquireLeadership(ctx, p0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if b0.Epoch <= a0.Epoch {
		t.Fatalf("b's epoch %d not above a's %d", b0.Epoch, a0.Epoch)
	}
	fenced, err := a.CommitFlush(ctx, []PartitionCommit{commitOf(a0, 5, 9), commitOf(a1, 5, 9)})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fenced, []TP{p0}) {
		t.Fatalf("fenced = %v, want [%v]", fenced, p0)
	}
	if ps, _ := a.PartitionState(ctx, p0); !sameState(ps, PartitionState{DurableOffset: 5, LeaderEpoch: a0.Epoch}) {
		t.Fatalf("fenced partition's state changed: %+v", ps)
	}
	if ps, _ := a.PartitionState(ctx, p1); ps.DurableOffset != 10 {
		t.Fatalf("unfenced partition's state = %+v, want durable 10", ps)
	}
	if es := a.IndexEntries(p0, 5); len(es) != 0 {
		t.Fatalf("fenced commit's entry is visible: %+v", es)
	}

	// The new leader continues from the durable state it reads.
	ps, err := b.PartitionState(ctx, p0)
	if err != nil || ps.DurableOffset != 5 {
		t.Fatalf("b reads %+v, %v", ps, err)
	}
	if f, err := b.CommitFlush(ctx, []PartitionCommit{commitOf(b0, 5, 7)}); err != nil || f != nil {
		t.Fatalf("b's CommitFlush = %v, %v", f, err)
	}
	if ps, _ := b.PartitionState(ctx, p0); !sameState(ps, PartitionState{DurableOffset: 8, LeaderEpoch: b0.Epoch}) {
		t.Fatalf("state after b's commit = %+v", ps)
	}
	// A's deposed retry of the commit B's overlaps stays fenced (B's entry
	// at base 5 is a different one).
	if f, err := a.CommitFlush(ctx, []PartitionCommit{commitOf(a0, 5, 9)}); err != nil || !slices.Equal(f, []TP{p0}) {
		t.Fatalf("deposed retry = %v, %v; want fenced", f, err)
	}
	// A's retry of a commit that did go through before B took p1 counts as
	// committed, not fenced: its records are durable.
	if _, err := b.AcquireLeadership(ctx, p1, 2); err != nil {
		t.Fatal(err)
	}
	if f, err := a.CommitFlush(ctx, []PartitionCommit{commitOf(a1, 5, 9)}); err != nil || f != nil {
		t.Fatalf("retry of an applied commit after losing leadership = %v, %v; want committed", f, err)
	}
	if ps, _ := a.PartitionState(ctx, p1); ps.DurableOffset != 10 {
		t.Fatalf("p1 durable = %d", ps.DurableOffset)
	}

	// Under a current leadership, a commit that does not start at the
	// durable offset (a gap, or other records over durable offsets) cannot
	// happen: reported fenced, nothing written.
	b1, err := b.AcquireLeadership(ctx, p1, 2)
	if err != nil {
		t.Fatal(err)
	}
	overlap := commitOf(b1, 5, 12)
	overlap.Entry.Object = "other"
	for _, bad := range []PartitionCommit{commitOf(b1, 11, 12), overlap} {
		if f, err := b.CommitFlush(ctx, []PartitionCommit{commitOf(b0, 8, 8), bad}); err != nil || !slices.Equal(f, []TP{p1}) {
			t.Fatalf("commit at %d with durable 10 = %v, %v; want p1 fenced", bad.Entry.BaseOffset, f, err)
		}
	}
	if ps, _ := b.PartitionState(ctx, p1); ps.DurableOffset != 10 {
		t.Fatalf("p1 durable = %d after refused commits", ps.DurableOffset)
	}
	if ps, _ := b.PartitionState(ctx, p0); ps.DurableOffset != 9 {
		t.Fatalf("p0 durable = %d, want 9: the good commit beside the refused ones", ps.DurableOffset)
	}

	// A leadership whose leader key expired with its lease is fenced too.
	c := openStore(t, nil, nil)
	c0, err := c.AcquireLeadership(ctx, p0, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil { // revokes the lease: the leader key goes
		t.Fatal(err)
	}
	if f, err := b.CommitFlush(ctx, []PartitionCommit{commitOf(c0, 9, 9)}); err != nil || !slices.Equal(f, []TP{p0}) {
		t.Fatalf("commit under an expired leader key = %v, %v; want fenced", f, err)
	}
}

// 200 partitions in one CommitFlush against an etcd with the default
// --max-txn-ops of 128: the commit is chunked, and a few fenced partitions
// in two of the chunks do not stop the rest.
func TestCommitFlushChunking(t *testing.T) {
	e := startEmbedded(t, t.TempDir(), 128)
	ctx := testCtx(t)
	reg := prometheus.NewRegistry()
	a := openStoreReg(t, e, nil, reg)
	b := openStore(t, e, nil)
	const n = 200
	mustTopic(t, a, "wide", n)
	commits := make([]PartitionCommit, n)
	for p := range int32(n) {
		l, err := a.AcquireLeadership(ctx, TP{"wide", p}, 1)
		if err != nil {
			t.Fatal(err)
		}
		commits[p] = commitOf(l, 0, int64(p))
	}
	var want []TP
	for _, p := range []int32{7, 150} {
		if _, err := b.AcquireLeadership(ctx, TP{"wide", p}, 2); err != nil {
			t.Fatal(err)
		}
		want = append(want, TP{"wide", p})
	}
	fenced, err := a.CommitFlush(ctx, commits)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fenced, want) {
		t.Fatalf("fenced = %v, want %v", fenced, want)
	}
	for p := range int32(n) {
		tp := TP{"wide", p}
		ps, err := b.PartitionState(ctx, tp)
		if err != nil {
			t.Fatal(err)
		}
		wantDurable := int64(p) + 1
		if slices.Contains(want, tp) {
			wantDurable = 0
		}
		if ps.DurableOffset != wantDurable {
			t.Fatalf("%v durable = %d, want %d", tp, ps.DurableOffset, wantDurable)
		}
	}
	// 200 partitions at 42 per transaction (3 puts each): 5 chunks; the two
	// holding a fenced partition fail their compare once and then commit.
	if got := counterValue(t, a.metrics.txns.WithLabelValues("commit_flush", "ok")); got != 5 {
		t.Errorf("commit_flush ok = %v, want 5", got)
	}
	if got := counterValue(t, a.metrics.txns.WithLabelValues("commit_flush", "conflict")); got != 2 {
		t.Errorf("commit_flush conflict = %v, want 2", got)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	if !slices.Contains(names, "strata_etcd_txn_total") || !slices.Contains(names, "strata_etcd_txn_duration_seconds") {
		t.Errorf("registered metrics = %v", names)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestSetLogStartOffset(t *testing.T) {
	ctx := testCtx(t)
	a := openStore(t, nil, nil)
	mustTopic(t, a, "ret", 1)
	tp := TP{"ret", 0}
	l, err := a.AcquireLeadership(ctx, tp, 1)
	if err != nil {
		t.Fatal(err)
	}
	if f, err := a.CommitFlush(ctx, []PartitionCommit{commitOf(l, 0, 99)}); err != nil || f != nil {
		t.Fatalf("CommitFlush = %v, %v", f, err)
	}
	steps := []struct {
		offset int64
		want   int64
		err    error
	}{
		{40, 40, nil},
		{10, 40, nil}, // never backwards
		{40, 40, nil},
		{100, 100, nil}, // up to the durable offset
		{101, 100, ErrOffsetOutOfRange},
		{-1, 100, ErrOffsetOutOfRange},
	}
	for _, st := range steps {
		if err := a.SetLogStartOffset(ctx, l, st.offset); !errors.Is(err, st.err) {
			t.Fatalf("SetLogStartOffset(%d): err = %v, want %v", st.offset, err, st.err)
		}
		ps, err := a.PartitionState(ctx, tp)
		if err != nil {
			t.Fatal(err)
		}
		if ps.LogStartOffset != st.want || ps.DurableOffset != 100 {
			t.Fatalf("after SetLogStartOffset(%d): %+v, want log start %d", st.offset, ps, st.want)
		}
	}
	// Commits after a log start change keep it (separate keys).
	if f, err := a.CommitFlush(ctx, []PartitionCommit{commitOf(l, 100, 109)}); err != nil || f != nil {
		t.Fatalf("CommitFlush = %v, %v", f, err)
	}
	if ps, _ := a.PartitionState(ctx, tp); ps.LogStartOffset != 100 || ps.DurableOffset != 110 {
		t.Fatalf("state = %+v", ps)
	}
	if _, err := a.AcquireLeadership(ctx, tp, 2); err != nil {
		t.Fatal(err)
	}
	if err := a.SetLogStartOffset(ctx, l, 105); !errors.Is(err, ErrFenced) {
		t.Fatalf("deposed SetLogStartOffset: err = %v, want ErrFenced", err)
	}
	if err := a.SetLogStartOffset(ctx, Leadership{TP: tp}, 105); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("zero leadership: err = %v, want ErrNotLeader", err)
	}
}

// An etcd that is not there fails Open within the dial timeout.
func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	s, err := Open(ctx, Config{Endpoints: []string{"http://127.0.0.1:1"}, Cluster: "x", DialTimeout: 300 * time.Millisecond}, nil, nil)
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded without an etcd")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Open took %v to fail", d)
	}
}

// A commit retried after its first attempt went through and the roller then
// replaced its index entry: still committed (the durable key proves it), and
// the durable offset does not move back to the retried commit's.
func TestCommitFlushRetryAfterRoll(t *testing.T) {
	ctx := testCtx(t)
	s := openStore(t, nil, nil)
	mustTopic(t, s, "rolled", 1)
	tp := TP{"rolled", 0}
	l, err := s.AcquireLeadership(ctx, tp, 1)
	if err != nil {
		t.Fatal(err)
	}
	first, second := commitOf(l, 0, 9), commitOf(l, 10, 19)
	for _, c := range []PartitionCommit{first, second, commitOf(l, 20, 29)} {
		if f, err := s.CommitFlush(ctx, []PartitionCommit{c}); err != nil || f != nil {
			t.Fatalf("CommitFlush = %v, %v", f, err)
		}
	}
	seg := IndexEntry{BaseOffset: 0, LastOffset: 19, Object: "segments/x", Size: 2000, Records: 20}
	if err := s.ReplaceIndex(ctx, l, 0, 19, []IndexEntry{seg}); err != nil {
		t.Fatal(err)
	}
	// second's index key is gone now; its retry must not recreate it.
	if f, err := s.CommitFlush(ctx, []PartitionCommit{second}); err != nil || f != nil {
		t.Fatalf("retry after roll = %v, %v; want committed", f, err)
	}
	if ps, _ := s.PartitionState(ctx, tp); ps.DurableOffset != 30 {
		t.Fatalf("durable = %d after retry, want 30", ps.DurableOffset)
	}
	if es := s.IndexEntries(tp, 0); len(es) != 2 || es[0] != seg || es[1] != testEntry(20, 29) {
		t.Fatalf("index = %+v", es)
	}
	// Under a new leader, the same retry can no longer be told apart from
	// other records at those offsets: fenced (it did happen, so at worst a
	// producer retries into a duplicate; nothing is lost).
	other := openStore(t, nil, nil)
	if _, err := other.AcquireLeadership(ctx, tp, 2); err != nil {
		t.Fatal(err)
	}
	if f, err := s.CommitFlush(ctx, []PartitionCommit{second}); err != nil || !slices.Equal(f, []TP{tp}) {
		t.Fatalf("retry after roll and takeover = %v, %v; want fenced", f, err)
	}
	if f, err := s.CommitFlush(ctx, []PartitionCommit{commitOf(l, 20, 29)}); err != nil || f != nil {
		t.Fatalf("retry of an unrolled commit after takeover = %v, %v; want committed", f, err)
	}
}
