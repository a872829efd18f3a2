package metadata

import (
	"context"
	"errors"
	"testing"
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
	if ps != (PartitionState{DurableOffset: 10, LeaderEpoch: l.Epoch}) {
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
