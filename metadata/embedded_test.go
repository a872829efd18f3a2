package metadata

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

func TestEmbeddedRestartKeepsData(t *testing.T) {
	dir := t.TempDir()
	ctx := testCtx(t)

	e1, err := StartEmbedded(ctx, EmbeddedConfig{Dir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s1, err := Open(ctx, Config{Endpoints: e1.Endpoints(), Cluster: "restart"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	topic, err := s1.CreateTopic(ctx, "kept", 2, map[string]string{"retention.ms": "1000"})
	if err != nil {
		t.Fatal(err)
	}
	tp := TP{"kept", 1}
	l, err := s1.AcquireLeadership(ctx, tp, 1)
	if err != nil {
		t.Fatal(err)
	}
	entry := testEntry(0, 9)
	if fenced, err := s1.CommitFlush(ctx, []PartitionCommit{{Leadership: l, Entry: entry, DurableOffset: 10}}); err != nil || len(fenced) != 0 {
		t.Fatalf("CommitFlush = %v, %v", fenced, err)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e1.Close(); err != nil {
		t.Fatal(err)
	}

	e2, err := StartEmbedded(ctx, EmbeddedConfig{Dir: dir}, nil)
	if err != nil {
		t.Fatalf("restart on the same dir: %v", err)
	}
	defer e2.Close()
	s2, err := Open(ctx, Config{Endpoints: e2.Endpoints(), Cluster: "restart"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, ok := s2.Topic("kept")
	if !ok || got.ID != topic.ID || got.Configs["retention.ms"] != "1000" {
		t.Fatalf("topic after restart = %+v, %v; want %+v", got, ok, topic)
	}
	ps, err := s2.PartitionState(ctx, tp)
	if err != nil {
		t.Fatal(err)
	}
	if !sameState(ps, PartitionState{DurableOffset: 10, LeaderEpoch: l.Epoch}) {
		t.Fatalf("state after restart = %+v", ps)
	}
	if es := s2.IndexEntries(tp, 0); len(es) != 1 || es[0] != entry {
		t.Fatalf("index after restart = %+v", es)
	}
	l2, err := s2.AcquireLeadership(ctx, tp, 1)
	if err != nil {
		t.Fatal(err)
	}
	if l2.Epoch <= l.Epoch {
		t.Fatalf("epoch after restart = %d, want > %d", l2.Epoch, l.Epoch)
	}
}

func TestEmbeddedRejectsNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "10.1.2.3:2379", "example.com:2379", "nonsense"} {
		_, err := StartEmbedded(context.Background(), EmbeddedConfig{Dir: t.TempDir(), ClientAddr: addr}, nil)
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("ClientAddr %q: err = %v, want ErrInvalidConfig", addr, err)
		}
		_, err = StartEmbedded(context.Background(), EmbeddedConfig{Dir: t.TempDir(), PeerAddr: addr}, nil)
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("PeerAddr %q: err = %v, want ErrInvalidConfig", addr, err)
		}
	}
	if _, err := StartEmbedded(context.Background(), EmbeddedConfig{}, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("no Dir: err = %v, want ErrInvalidConfig", err)
	}
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// etcd going away for longer than the lease TTL and coming back: the Store
// stops claiming its lease while etcd cannot confirm it, then holds one again
// (etcd restores leases on restart, or the Store is granted a new one),
// registers its node again if needed, and its watch resumes, without anyone
// reopening it.
func TestStoreSurvivesEtcdRestart(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	ctx := testCtx(t)
	e1, err := StartEmbedded(ctx, EmbeddedConfig{Dir: dir, ClientAddr: addr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := openStore(t, e1, func(c *Config) {
		c.LeaseTTL = time.Second
		c.DialTimeout = time.Second
		c.RequestTimeout = time.Second
	})
	if err := s.RegisterNode(ctx, Node{ID: 5, Host: "127.0.0.1", Port: 9092}); err != nil {
		t.Fatal(err)
	}
	if !s.HoldsLease() {
		t.Fatal("a fresh Store does not hold its lease")
	}
	if err := e1.Close(); err != nil {
		t.Fatal(err)
	}
	// Down for longer than the TTL: the Store cannot know its lease lives.
	eventually(t, "the Store stops claiming its lease", func() bool { return !s.HoldsLease() })
	time.Sleep(2 * time.Second)
	if s.HoldsLease() {
		t.Fatal("the Store claims its lease while etcd is down")
	}
	e2, err := StartEmbedded(ctx, EmbeddedConfig{Dir: dir, ClientAddr: addr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	eventually(t, "a lease again", s.HoldsLease)
	other := openStore(t, e2, nil)
	eventually(t, "the node is registered again", func() bool {
		ns := other.Nodes()
		return len(ns) == 1 && ns[0].ID == 5
	})
	if _, err := other.CreateTopic(ctx, "after", 1, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the watch resumed", func() bool { _, ok := s.Topic("after"); return ok })
	if _, err := s.AcquireLeadership(ctx, TP{"after", 0}, 5); err != nil {
		t.Fatal(err)
	}
	// Clients first: etcd's Close waits (up to ~6s) for open watch streams.
	other.Close()
	s.Close()
}
