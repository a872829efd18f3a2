package metadata

import (
	"errors"
	"sync"
	"testing"
)

func TestAlterTopicConfigsAndAddPartitions(t *testing.T) {
	ctx := testCtx(t)
	s := openStore(t, nil, nil)
	other := openStore(t, nil, nil)
	if _, err := s.CreateTopic(ctx, "cfg", 2, map[string]string{"retention.ms": "1000", "segment.bytes": "5"}); err != nil {
		t.Fatal(err)
	}
	v := "2000"
	tp, err := s.AlterTopicConfigs(ctx, "cfg", map[string]*string{"retention.ms": &v, "segment.bytes": nil}, false)
	if err != nil {
		t.Fatal(err)
	}
	if tp.Configs["retention.ms"] != "2000" || len(tp.Configs) != 1 {
		t.Fatalf("configs after incremental alter: %v", tp.Configs)
	}
	rb := "10"
	if tp, err = s.AlterTopicConfigs(ctx, "cfg", map[string]*string{"retention.bytes": &rb}, true); err != nil || len(tp.Configs) != 1 || tp.Configs["retention.bytes"] != "10" {
		t.Fatalf("replace: %v, %v", tp.Configs, err)
	}
	eventually(t, "other store sees new configs", func() bool {
		ot, ok := other.Topic("cfg")
		return ok && ot.Configs["retention.bytes"] == "10" && len(ot.Configs) == 1
	})
	if _, err := s.AlterTopicConfigs(ctx, "nope", nil, false); !errors.Is(err, ErrUnknownTopic) {
		t.Fatalf("alter unknown topic: %v", err)
	}
	if tp, err = s.AddPartitions(ctx, "cfg", 5); err != nil || tp.Partitions != 5 {
		t.Fatalf("add partitions: %+v, %v", tp, err)
	}
	if _, err := s.AddPartitions(ctx, "cfg", 3); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("shrink: %v, want ErrInvalidConfig", err)
	}
	eventually(t, "other store sees 5 partitions", func() bool { ot, _ := other.Topic("cfg"); return ot.Partitions == 5 })
}

func TestAllocateProducerIDsAreUnique(t *testing.T) {
	ctx := testCtx(t)
	a, b := openStore(t, nil, nil), openStore(t, nil, nil)
	seen := map[int64]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(s *Store) {
			defer wg.Done()
			first, err := s.AllocateProducerIDs(ctx, 100)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for id := first; id < first+100; id++ {
				if seen[id] {
					t.Errorf("producer id %d allocated twice", id)
				}
				seen[id] = true
			}
		}([]*Store{a, b}[i%2])
	}
	wg.Wait()
	if len(seen) != 800 {
		t.Fatalf("%d ids allocated, want 800", len(seen))
	}
}
