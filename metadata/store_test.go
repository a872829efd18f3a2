package metadata

import (
	"errors"
	"slices"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// A Store that dies without revoking its lease (kill -9) loses its node and
// leader keys when the lease expires.
func TestLeaseExpiryRemovesNode(t *testing.T) {
	ctx := testCtx(t)
	a := openStore(t, nil, func(c *Config) { c.LeaseTTL = time.Second })
	b := openStore(t, nil, nil)
	if err := a.RegisterNode(ctx, Node{ID: 3, Host: "127.0.0.1", Port: 9092}); err != nil {
		t.Fatal(err)
	}
	if err := b.RegisterNode(ctx, Node{ID: 1, Host: "127.0.0.1", Port: 9093, HTTP: "127.0.0.1:9644"}); err != nil {
		t.Fatal(err)
	}
	if ns := b.Nodes(); !slices.Contains(ns, Node{1, "127.0.0.1", 9093, "127.0.0.1:9644", ""}) {
		t.Fatalf("b's own registration not visible at once: %v", ns)
	}
	eventually(t, "b sees both nodes", func() bool { return len(b.Nodes()) == 2 })
	if ns := b.Nodes(); ns[0] != (Node{1, "127.0.0.1", 9093, "127.0.0.1:9644", ""}) || ns[1] != (Node{3, "127.0.0.1", 9092, "", ""}) {
		t.Fatalf("Nodes = %v", ns)
	}
	mustTopic(t, a, "lease", 1)
	if _, err := a.AcquireLeadership(ctx, TP{"lease", 0}, 3); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b sees a's leadership", func() bool { _, ok := b.Leader(TP{"lease", 0}); return ok })

	// Die: stop the keep-alive without revoking.
	a.revokeOnClose = false
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the lease expires and node 3 goes", func() bool {
		ns := b.Nodes()
		return len(ns) == 1 && ns[0].ID == 1
	})
	eventually(t, "the leader key goes with it", func() bool { _, ok := b.Leader(TP{"lease", 0}); return !ok })
	// The epoch outlives the leader key.
	l, err := b.AcquireLeadership(ctx, TP{"lease", 0}, 1)
	if err != nil || l.Epoch != 1 {
		t.Fatalf("next leadership = %+v, %v; want epoch 1", l, err)
	}
}

func TestRegisterNodeValidation(t *testing.T) {
	s := openStore(t, nil, nil)
	for _, n := range []Node{{ID: -1, Host: "h", Port: 1}, {ID: 1, Port: 1}, {ID: 1, Host: "h"}, {ID: 1, Host: "h", Port: 70000}} {
		if err := s.RegisterNode(testCtx(t), n); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("RegisterNode(%+v): err = %v, want ErrInvalidConfig", n, err)
		}
	}
}

// A cache whose revision was compacted away cannot catch up by watching: the
// watch reports ErrCompacted and a reload restores everything.
func TestWatchCompactedReload(t *testing.T) {
	e := startEmbedded(t, t.TempDir(), 0)
	ctx := testCtx(t)
	a := openStore(t, e, nil)
	b := openStore(t, e, nil)
	topic := mustTopic(t, a, "survivor", 1)
	for i := range 5 {
		if _, err := a.AcquireLeadership(ctx, TP{"survivor", 0}, int32(i)); err != nil {
			t.Fatal(err)
		}
	}
	raw := rawClient(t, e)
	resp, err := raw.Get(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Compact(ctx, resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	// Make b's cache look like it fell behind before the compaction.
	b.cache.replace(1, nil)
	if _, ok := b.Topic("survivor"); ok {
		t.Fatal("cache not emptied")
	}
	if err := b.watchOnce(ctx); !errors.Is(err, rpctypes.ErrCompacted) {
		t.Fatalf("watchOnce: err = %v, want ErrCompacted", err)
	}
	if err := b.load(ctx); err != nil {
		t.Fatal(err)
	}
	if got, ok := b.Topic("survivor"); !ok || got.ID != topic.ID {
		t.Fatalf("after reload: %+v, %v", got, ok)
	}
	if l, ok := b.Leader(TP{"survivor", 0}); !ok || l.Epoch != 4 {
		t.Fatalf("leader after reload: %+v, %v", l, ok)
	}
}
