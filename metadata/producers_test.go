package metadata

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// A flush commit puts only the producers it carries: the keys of the others
// are not rewritten, whatever their number.
func TestCommitFlushProducerDeltas(t *testing.T) {
	ctx := testCtx(t)
	s := openStore(t, nil, nil)
	mustTopic(t, s, "d", 1)
	l, err := s.AcquireLeadership(ctx, TP{"d", 0}, 1)
	if err != nil {
		t.Fatal(err)
	}
	// 1000 producers over 16 commits of at most MaxCommitProducers each.
	const total = 1000
	per := s.MaxCommitProducers()
	var off int64
	for first := 0; first < total; first += per {
		var b strings.Builder
		b.WriteString("{")
		for id := first; id < min(first+per, total); id++ {
			if id > first {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `"%d":{"e":0,"o":%d}`, id, off)
		}
		b.WriteString("}")
		c := commitOf(l, off, off)
		c.Producers = []byte(b.String())
		if f, err := s.CommitFlush(ctx, []PartitionCommit{c}); err != nil || f != nil {
			t.Fatalf("CommitFlush = %v, %v", f, err)
		}
		off++
	}
	key := s.keys.producer(l.TopicID, 0, 5)
	before, err := s.cli.Get(ctx, key)
	if err != nil || len(before.Kvs) != 1 {
		t.Fatalf("get %s: %v", key, err)
	}
	// One more commit with one producer: one producer key changes.
	c := commitOf(l, off, off)
	c.Producers = []byte(`{"999":{"e":1}}`)
	if f, err := s.CommitFlush(ctx, []PartitionCommit{c}); err != nil || f != nil {
		t.Fatalf("CommitFlush = %v, %v", f, err)
	}
	resp, err := s.cli.Get(ctx, s.keys.producers(l.TopicID, 0), clientv3.WithPrefix(), clientv3.WithMinModRev(before.Header.Revision+1))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Key) != s.keys.producer(l.TopicID, 0, 999) {
		t.Fatalf("the last commit rewrote %d producer keys, want only producer 999's", len(resp.Kvs))
	}
	got, err := s.PartitionProducers(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != total || string(got[999]) != `{"e":1}` || string(got[5]) != `{"e":0,"o":0}` {
		t.Fatalf("%d producers read back; 999: %s, 5: %s", len(got), got[999], got[5])
	}
	if ps, err := s.PartitionState(ctx, TP{"d", 0}); err != nil || ps.Producers != nil || ps.DurableOffset != off+1 {
		t.Fatalf("state = %+v, %v", ps, err)
	}
}

// On an etcd with --max-txn-ops 128, partitions carrying many producers are
// committed in several transactions, each within the limit.
func TestCommitFlushProducersChunked(t *testing.T) {
	e := startEmbedded(t, t.TempDir(), 128)
	ctx := testCtx(t)
	s := openStore(t, e, nil)
	const n = 6
	mustTopic(t, s, "c", n)
	per := s.MaxCommitProducers()
	if per+producerOpsPerPartition > 128 {
		t.Fatalf("MaxCommitProducers %d does not fit a 128-op transaction", per)
	}
	commits := make([]PartitionCommit, 0, n)
	ls := make([]Leadership, n)
	for p := range int32(n) {
		l, err := s.AcquireLeadership(ctx, TP{"c", p}, 1)
		if err != nil {
			t.Fatal(err)
		}
		ls[p] = l
		c := commitOf(l, 0, 3)
		c.Producers = bigProducerStates(per, 200)
		commits = append(commits, c)
	}
	if f, err := s.CommitFlush(ctx, commits); err != nil || f != nil {
		t.Fatalf("CommitFlush = %v, %v", f, err)
	}
	for p := range int32(n) {
		got, err := s.PartitionProducers(ctx, ls[p])
		if err != nil || len(got) != per {
			t.Fatalf("partition %d: %d producers, %v", p, len(got), err)
		}
	}
	if got := counterValue(t, s.metrics.txns.WithLabelValues("commit_flush", "ok")); got < n/2 {
		t.Errorf("%v commit transactions for %d partitions of %d producers each", got, n, per)
	}
}

func TestDeleteProducers(t *testing.T) {
	ctx := testCtx(t)
	a := openStore(t, nil, nil)
	b := openStore(t, nil, nil)
	mustTopic(t, a, "x", 1)
	l, err := a.AcquireLeadership(ctx, TP{"x", 0}, 1)
	if err != nil {
		t.Fatal(err)
	}
	c := commitOf(l, 0, 0)
	c.Producers = bigProducerStates(40, 10)
	if f, err := a.CommitFlush(ctx, []PartitionCommit{c}); err != nil || f != nil {
		t.Fatalf("CommitFlush = %v, %v", f, err)
	}
	var ids []int64
	for id := int64(0); id < 30; id++ {
		ids = append(ids, id)
	}
	ids = append(ids, 12345) // never had a key
	if err := a.DeleteProducers(ctx, l, ids); err != nil {
		t.Fatal(err)
	}
	got, err := a.PartitionProducers(ctx, l)
	if err != nil || len(got) != 10 || got[30] == nil || got[29] != nil {
		t.Fatalf("after delete: %d producers, %v", len(got), err)
	}
	// A deposed leader deletes nothing.
	if _, err := b.AcquireLeadership(ctx, TP{"x", 0}, 2); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteProducers(ctx, l, []int64{30}); !errors.Is(err, ErrFenced) {
		t.Fatalf("deposed delete: %v, want ErrFenced", err)
	}
	if got, _ := a.PartitionProducers(ctx, l); got[30] == nil {
		t.Fatal("a deposed leader deleted a producer")
	}
}

// State written by an older Strata (all producers in the state key) moves
// to per-producer keys; a key already there is newer and wins.
func TestMigrateProducers(t *testing.T) {
	ctx := testCtx(t)
	s := openStore(t, nil, nil)
	mustTopic(t, s, "m", 1)
	tp := TP{"m", 0}
	l, err := s.AcquireLeadership(ctx, tp, 1)
	if err != nil {
		t.Fatal(err)
	}
	if f, err := s.CommitFlush(ctx, []PartitionCommit{commitOf(l, 0, 9)}); err != nil || f != nil {
		t.Fatalf("CommitFlush = %v, %v", f, err)
	}
	// What an older Strata wrote: 300 producers in the state key.
	var b strings.Builder
	b.WriteString("{")
	for id := range 300 {
		if id > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"%d":{"e":0,"old":true}`, id)
	}
	b.WriteString("}")
	legacy := mustJSON(stateRec{Durable: 10, LeaderEpoch: l.Epoch, Producers: []byte(b.String())})
	if _, err := s.cli.Put(ctx, s.keys.state(l.TopicID, 0), legacy); err != nil {
		t.Fatal(err)
	}
	if _, err := s.cli.Put(ctx, s.keys.producer(l.TopicID, 0, 7), `{"e":3}`); err != nil {
		t.Fatal(err)
	}
	if ps, err := s.PartitionState(ctx, tp); err != nil || len(ps.Producers) == 0 {
		t.Fatalf("legacy state not read: %+v, %v", ps, err)
	}
	if err := s.MigrateProducers(ctx, l); err != nil {
		t.Fatal(err)
	}
	got, err := s.PartitionProducers(ctx, l)
	if err != nil || len(got) != 300 || string(got[7]) != `{"e":3}` || string(got[299]) != `{"e":0,"old":true}` {
		t.Fatalf("after migration: %d producers (7: %s), %v", len(got), got[7], err)
	}
	ps, err := s.PartitionState(ctx, tp)
	if err != nil || ps.Producers != nil || ps.DurableOffset != 10 || ps.LeaderEpoch != l.Epoch {
		t.Fatalf("state after migration = %+v, %v", ps, err)
	}
	// Nothing left to migrate: a no-op.
	if err := s.MigrateProducers(ctx, l); err != nil {
		t.Fatal(err)
	}
	// The next commit starts where the state says.
	if f, err := s.CommitFlush(ctx, []PartitionCommit{commitOf(l, 10, 10)}); err != nil || f != nil {
		t.Fatalf("CommitFlush after migration = %v, %v", f, err)
	}
}

// Errors etcd gives for a request it will never accept are permanent; those
// of an unavailable etcd are not.
func TestIsPermanent(t *testing.T) {
	e := startEmbedded(t, t.TempDir(), 128)
	ctx := testCtx(t)
	s := openStore(t, e, nil)
	ops := make([]clientv3.Op, 129)
	for i := range ops {
		ops[i] = clientv3.OpPut(fmt.Sprintf("/%s/k%d", cluster(t), i), "v")
	}
	_, err := s.txn(ctx, "test", nil, ops, nil)
	if err == nil || !IsPermanent(err) {
		t.Errorf("too many ops: %v, permanent %v", err, IsPermanent(err))
	}
	_, err = s.txn(ctx, "test", nil, []clientv3.Op{clientv3.OpPut("/"+cluster(t)+"/big", strings.Repeat("x", 2<<20))}, nil)
	if err == nil || !IsPermanent(err) {
		t.Errorf("too large: %v, permanent %v", err, IsPermanent(err))
	}
	dup := []clientv3.Op{clientv3.OpPut("/"+cluster(t)+"/d", "1"), clientv3.OpPut("/"+cluster(t)+"/d", "2")}
	_, err = s.txn(ctx, "test", nil, dup, nil)
	if err == nil || !IsPermanent(err) {
		t.Errorf("duplicate key: %v, permanent %v", err, IsPermanent(err))
	}
	if _, err := s.CommitFlush(ctx, []PartitionCommit{{}}); !IsPermanent(err) {
		t.Errorf("invalid commit: %v not permanent", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.txn(cctx, "test", nil, nil, nil); err == nil || IsPermanent(err) {
		t.Errorf("canceled: %v, permanent %v", err, IsPermanent(err))
	}
	e.Close()
	sctx, scancel := context.WithTimeout(ctx, 2*1e9)
	defer scancel()
	if _, err := s.txn(sctx, "test", nil, nil, nil); err == nil || IsPermanent(err) {
		t.Errorf("etcd down: %v, permanent %v", err, IsPermanent(err))
	}
}
