package metadata

import (
	"errors"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestTopicLifecycle(t *testing.T) {
	ctx := testCtx(t)
	a := openStore(t, nil, nil)
	b := openStore(t, nil, nil) // sees a's writes only through its watch

	created, err := a.CreateTopic(ctx, "orders", 3, map[string]string{"cleanup.policy": "delete"})
	if err != nil {
		t.Fatal(err)
	}
	if created.ID == (TopicID{}) || created.ID[6]>>4 != 4 || created.ID[8]>>6 != 2 {
		t.Fatalf("topic id %s is not a v4 UUID", created.ID)
	}
	// The creating Store sees it at once.
	if got, ok := a.Topic("orders"); !ok || got.ID != created.ID || got.Partitions != 3 {
		t.Fatalf("a.Topic = %+v, %v", got, ok)
	}
	if _, err := a.CreateTopic(ctx, "orders", 1, nil); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("second create: err = %v, want ErrTopicExists", err)
	}
	eventually(t, "b sees the topic", func() bool { _, ok := b.Topic("orders"); return ok })
	got, _ := b.Topic("orders")
	if got.ID != created.ID || got.Configs["cleanup.policy"] != "delete" || !got.Created.Equal(created.Created) {
		t.Fatalf("b.Topic = %+v, want %+v", got, created)
	}
	if got, ok := b.TopicByID(created.ID); !ok || got.Name != "orders" {
		t.Fatalf("b.TopicByID = %+v, %v", got, ok)
	}
	// Configs are copies: changing them does not change the cache.
	got.Configs["cleanup.policy"] = "compact"
	if again, _ := b.Topic("orders"); again.Configs["cleanup.policy"] != "delete" {
		t.Fatal("caller's change of Configs reached the cache")
	}

	if _, err := a.CreateTopic(ctx, "alpha", 1, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b sees both topics", func() bool { return len(b.Topics()) == 2 })
	if ts := b.Topics(); ts[0].Name != "alpha" || ts[1].Name != "orders" {
		t.Fatalf("Topics not sorted: %v", ts)
	}

	// Give the topic partition keys, so the delete has something to remove.
	l, err := a.AcquireLeadership(ctx, TP{"orders", 0}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if f, err := a.CommitFlush(ctx, []PartitionCommit{{Leadership: l, Entry: testEntry(0, 4), DurableOffset: 5}}); err != nil || f != nil {
		t.Fatalf("CommitFlush = %v, %v", f, err)
	}

	if err := b.DeleteTopic(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Topic("orders"); ok {
		t.Fatal("b still has the topic it deleted")
	}
	eventually(t, "a forgets the topic", func() bool { _, ok := a.Topic("orders"); return !ok })
	eventually(t, "a forgets the leader and index", func() bool {
		_, ok := a.Leader(TP{"orders", 0})
		return !ok
	})
	if _, ok := a.TopicByID(created.ID); ok {
		t.Fatal("TopicByID still finds the deleted topic")
	}
	raw := rawClient(t, nil)
	resp, err := raw.Get(ctx, a.keys.topicParts(created.ID), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 0 {
		t.Fatalf("%d partition keys left after delete", resp.Count)
	}
	if err := a.DeleteTopic(ctx, "orders"); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("second delete: err = %v, want ErrUnknownTopic", err)
	}

	// Re-creating the name gives a new ID and a clean slate.
	again, err := a.CreateTopic(ctx, "orders", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID == created.ID {
		t.Fatal("re-created topic reused the old ID")
	}
	ps, err := a.PartitionState(ctx, TP{"orders", 0})
	if err != nil || !sameState(ps, PartitionState{}) {
		t.Fatalf("state of re-created topic = %+v, %v; want zero", ps, err)
	}
	l2, err := a.AcquireLeadership(ctx, TP{"orders", 0}, 1)
	if err != nil || l2.Epoch != 0 {
		t.Fatalf("first leadership of re-created topic = %+v, %v; want epoch 0", l2, err)
	}
	if es := a.IndexEntries(TP{"orders", 0}, 0); len(es) != 0 {
		t.Fatalf("re-created topic has index entries %v", es)
	}
}

func TestCreateTopicValidation(t *testing.T) {
	ctx := testCtx(t)
	s := openStore(t, nil, nil)
	tests := []struct {
		name       string
		partitions int32
		configs    map[string]string
		want       error
	}{
		{"", 1, nil, ErrInvalidTopic},
		{".", 1, nil, ErrInvalidTopic},
		{"..", 1, nil, ErrInvalidTopic},
		{"a/b", 1, nil, ErrInvalidTopic},
		{"spaced name", 1, nil, ErrInvalidTopic},
		{"ünïcode", 1, nil, ErrInvalidTopic},
		{strings.Repeat("x", 250), 1, nil, ErrInvalidTopic},
		{"zero", 0, nil, ErrInvalidConfig},
		{"negative", -1, nil, ErrInvalidConfig},
		{"emptyconfig", 1, map[string]string{"": "x"}, ErrInvalidConfig},
		{strings.Repeat("x", 249), 1, nil, nil},
		{"a.b_c-D9", 2, nil, nil},
		{"...", 1, nil, nil},
	}
	for _, tt := range tests {
		_, err := s.CreateTopic(ctx, tt.name, tt.partitions, tt.configs)
		if !errors.Is(err, tt.want) {
			t.Errorf("CreateTopic(%q, %d): err = %v, want %v", tt.name, tt.partitions, err, tt.want)
		}
	}
	if err := s.DeleteTopic(ctx, "no-such-topic"); !errors.Is(err, ErrUnknownTopic) {
		t.Errorf("DeleteTopic of absent topic: err = %v", err)
	}
	if err := s.DeleteTopic(ctx, "bad/name"); !errors.Is(err, ErrUnknownTopic) {
		t.Errorf("DeleteTopic of invalid name: err = %v", err)
	}
}

func TestOpenValidation(t *testing.T) {
	ctx := testCtx(t)
	for _, cfg := range []Config{
		{Cluster: "x"},
		{Endpoints: shared.Endpoints(), Cluster: ""},
		{Endpoints: shared.Endpoints(), Cluster: "a/b"},
		{Endpoints: shared.Endpoints(), Cluster: "x", MaxTxnOps: 1},
	} {
		if s, err := Open(ctx, cfg, nil, nil); !errors.Is(err, ErrInvalidConfig) {
			if s != nil {
				s.Close()
			}
			t.Errorf("Open(%+v): err = %v, want ErrInvalidConfig", cfg, err)
		}
	}
}
