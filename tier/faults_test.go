package tier

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strata-io/strata/metadata"
)

// A new leader whose metadata watch lags the old leader's commits must not
// answer a fetch at an offset its cache lacks with a later entry it holds
// (its own writes reach its cache at once): the consumer would skip the
// offsets in between.
func TestReadAfterTakeoverWithLaggingWatchNeverSkips(t *testing.T) {
	e := newEnv(t, 1)
	ctx := context.Background()
	mb := e.meta()
	waitFor(t, func() bool { _, ok := mb.Topic(e.topic); return ok })
	resume := mb.PauseWatch()
	defer resume()

	a := e.tier(Config{})
	want := fill(t, e.partition(a, 0), 2, "a", 1) // offsets 0..19, committed by A

	b, err := New(Config{DataDir: t.TempDir(), FlushInterval: 5 * time.Millisecond, MaintenanceInterval: time.Hour}, e.bucket, mb, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b.Close(cctx)
	})
	pb := e.partition(b, 0)
	if hw := pb.HighWatermark(); hw != 20 {
		t.Fatalf("new leader's high watermark %d, want 20", hw)
	}
	want = append(want, fill(t, pb, 1, "b", 2)...) // offsets 20..29, in B's cache

	res, err := pb.Read(ctx, 0, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	got := values(t, res.Batches)
	if len(got) == 0 || got[0] != want[0] {
		t.Fatalf("fetch at 0 on a leader whose watch lags: first record %v, want %s (a later record means the consumer skips)", got[:min(len(got), 1)], want[0])
	}
	if all := readAll(t, pb, 0); fmt.Sprint(all) != fmt.Sprint(want) {
		t.Fatalf("log read from 0:\n got %v\nwant %v", all, want)
	}
}

// A leader whose etcd lease is lost (etcd expired it: the node was cut off
// or paused) stops answering as leader: its high watermark may be stale, as
// another node may lead by now. It holds a new lease soon after, but that
// does not bring the old leadership back.
func TestLeaderWithoutItsLeaseStopsServing(t *testing.T) {
	e := newEnv(t, 1)
	ctx := context.Background()
	m := e.meta()
	waitFor(t, func() bool { _, ok := m.Topic(e.topic); return ok })
	a, err := New(Config{DataDir: t.TempDir(), FlushInterval: 5 * time.Millisecond, MaintenanceInterval: time.Hour}, e.bucket, m, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Close(cctx)
	})
	pa := e.partition(a, 0)
	fill(t, pa, 1, "a", 1)

	// etcd drops the lease the leader key hangs on.
	cli, err := clientv3.New(clientv3.Config{Endpoints: e.etcd.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	resp, err := cli.Get(ctx, "/test/partitions/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	var lease clientv3.LeaseID
	for _, kv := range resp.Kvs {
		if strings.HasSuffix(string(kv.Key), "/leader") {
			lease = clientv3.LeaseID(kv.Lease)
		}
	}
	if lease == 0 {
		t.Fatal("no leader key with a lease")
	}
	if _, err := cli.Revoke(ctx, lease); err != nil {
		t.Fatal(err)
	}
	// Another node takes over and writes.
	b := e.tier(Config{})
	pb := e.partition(b, 0)
	fill(t, pb, 1, "b", 2)

	// The old leader's partition must stop serving once its Store notices
	// (its next keep-alive) and holds a new lease.
	waitFor(t, func() bool {
		_, err := pa.Read(ctx, 0, 1<<20, true)
		return errors.Is(err, ErrNotLeader)
	})
	waitFor(t, m.HoldsLease)
	if res, err := pa.Read(ctx, 0, 1<<20, true); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("old leader under a new lease: read gave %d bytes, high watermark %d, err %v; want ErrNotLeader", len(res.Batches), res.HighWatermark, err)
	}
}

// A partition moving off a live node (a node joins) keeps what that node
// accepted with acks=1 but had not flushed yet: the old leader flushes and
// lets go, and the new one waits for that before it takes over.
func TestMoveToAJoiningNodeKeepsAcksOneRecords(t *testing.T) {
	const parts = 8
	e := newEnv(t, parts)
	ctx := context.Background()
	node := func(id int32, flush time.Duration) *Tier {
		m := e.meta()
		if err := m.RegisterNode(ctx, metadata.Node{ID: id, Host: "127.0.0.1", Port: 9000 + id}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { _, ok := m.Topic(e.topic); return ok })
		tr, err := New(Config{DataDir: t.TempDir(), NodeID: id, FlushInterval: flush, MaintenanceInterval: time.Hour}, e.bucket, m, testLogger(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			tr.Close(cctx)
		})
		return tr
	}
	// Node 1 alone leads every partition and flushes only when asked.
	n1 := node(1, time.Hour)
	for p := int32(0); p < parts; p++ {
		b, h := batch(t, 1, fmt.Sprintf("p%d-", p), 1)
		if _, _, err := e.partition(n1, p).Append(ctx, b, h); err != nil { // acks=1: not waiting
			t.Fatal(err)
		}
	}
	n2 := node(2, 5*time.Millisecond)
	waitFor(t, func() bool { return len(n1.meta.Nodes()) == 2 && len(n2.meta.Nodes()) == 2 })
	moved := 0
	for p := int32(0); p < parts; p++ {
		tp := metadata.TP{Topic: e.topic, Partition: p}
		if a, _ := n2.meta.AssignedNode(tp); a.ID != 2 {
			continue
		}
		moved++
		pb := e.partition(n2, p)
		if hw := pb.HighWatermark(); hw != 1 {
			t.Fatalf("partition %d on the joining node: high watermark %d, want 1 (the acks=1 record node 1 accepted)", p, hw)
		}
		if got := readAll(t, pb, 0); fmt.Sprint(got) != fmt.Sprintf("[0:p%d--0]", p) {
			t.Fatalf("partition %d on the joining node: %v", p, got)
		}
	}
	if moved == 0 {
		t.Fatal("no partition moved to the joining node")
	}
}
