package tier

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/tier/objstore"
)

// gatedBucket holds the first Put until release is closed and lets later
// Puts through, recording when each Put started and ended.
type gatedBucket struct {
	objstore.Bucket
	release chan struct{}

	mu      sync.Mutex
	started int
	ended   int
	startC  chan int // receives the number of each Put as it starts
}

func (g *gatedBucket) Put(ctx context.Context, key string, data []byte) error {
	g.mu.Lock()
	g.started++
	n := g.started
	g.mu.Unlock()
	g.startC <- n
	if n == 1 {
		select {
		case <-g.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	err := g.Bucket.Put(ctx, key, data)
	g.mu.Lock()
	g.ended++
	g.mu.Unlock()
	return err
}

// TestFlushesPipelined: a second flush's PUT runs while the first one's is
// still under way only with two flushes in flight and FlushBytes pending
// (else the data waits and goes in the next object), and in every case its
// commit waits for the first one's: the high watermark never covers offsets
// whose flush has not committed, and the acks come in offset order.
func TestFlushesPipelined(t *testing.T) {
	for _, tc := range []struct {
		name       string
		depth      int
		flushBytes int
		overlap    bool
	}{
		{"two in flight, size trigger", 2, 1, true},
		{"two in flight, below the size trigger", 2, 0, false},
		{"one in flight", 1, 1, false},
	} {
		depth := tc.depth
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, 1)
			g := &gatedBucket{Bucket: e.bucket, release: make(chan struct{}), startC: make(chan int, 16)}
			tr, err := New(Config{DataDir: t.TempDir(), FlushInterval: 5 * time.Millisecond, FlushesInFlight: depth, FlushBytes: tc.flushBytes, MaintenanceInterval: time.Hour}, g, e.meta(), testLogger(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				tr.Close(ctx)
			})
			p, err := tr.Partition(context.Background(), metadata.TP{Topic: e.topic, Partition: 0})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()

			b1, h1 := batch(t, 5, "a", 1000)
			base1, wait1, err := p.Append(ctx, b1, h1)
			if err != nil {
				t.Fatal(err)
			}
			if got := <-g.startC; got != 1 {
				t.Fatalf("first put is #%d", got)
			}
			b2, h2 := batch(t, 3, "b", 2000)
			base2, wait2, err := p.Append(ctx, b2, h2)
			if err != nil {
				t.Fatal(err)
			}
			if base1 != 0 || base2 != 5 {
				t.Fatalf("offsets %d, %d; want 0, 5", base1, base2)
			}

			acked2 := make(chan error, 1)
			go func() { acked2 <- wait2(ctx) }()
			select {
			case n := <-g.startC:
				if !tc.overlap {
					t.Fatalf("put #%d started while the first one was under way", n)
				}
				// The second PUT completes, but nothing may commit or be
				// acknowledged before the first flush has.
				waitFor(t, func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.ended == 1 })
			case <-time.After(300 * time.Millisecond):
				if tc.overlap {
					t.Fatal("the second flush's PUT did not start while the first one's was under way")
				}
			}
			time.Sleep(50 * time.Millisecond)
			select {
			case err := <-acked2:
				t.Fatalf("the second batch was acknowledged (err %v) before the first flush committed", err)
			default:
			}
			if hw := p.HighWatermark(); hw != 0 {
				t.Fatalf("high watermark %d before the first flush committed", hw)
			}

			close(g.release)
			if err := wait1(ctx); err != nil {
				t.Fatal(err)
			}
			if err := <-acked2; err != nil {
				t.Fatal(err)
			}
			if hw := p.HighWatermark(); hw != 8 {
				t.Fatalf("high watermark %d, want 8", hw)
			}
			res, err := p.Read(ctx, 0, 1<<20, true)
			if err != nil {
				t.Fatal(err)
			}
			got := values(t, res.Batches)
			want := []string{"0:a-0", "1:a-1", "2:a-2", "3:a-3", "4:a-4", "5:b-0", "6:b-1", "7:b-2"}
			if len(got) != len(want) {
				t.Fatalf("read %v, want %v", got, want)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("read %v, want %v", got, want)
				}
			}
			// A new leader reading only etcd and the object store sees the
			// same: both commits applied, in order.
			m := e.meta()
			tp := metadata.TP{Topic: e.topic, Partition: 0}
			st, err := m.PartitionState(ctx, tp)
			if err != nil {
				t.Fatal(err)
			}
			var idx []metadata.IndexEntry
			waitFor(t, func() bool { idx = m.IndexEntries(tp, 0); return len(idx) == 2 })
			if st.DurableOffset != 8 || idx[0].BaseOffset != 0 || idx[1].BaseOffset != 5 {
				t.Fatalf("stored state: durable %d, index %+v", st.DurableOffset, idx)
			}
		})
	}
}

// TestOpenAllOpensEveryPartition: a request naming many new partitions
// opens them together; each is then open, at its durable state, and a
// second OpenAll has nothing to do.
func TestOpenAllOpensEveryPartition(t *testing.T) {
	e := newEnv(t, 40)
	tr := e.tier(Config{})
	var tps []metadata.TP
	for p := int32(0); p < 40; p++ {
		tps = append(tps, metadata.TP{Topic: e.topic, Partition: p})
	}
	tps = append(tps, metadata.TP{Topic: e.topic, Partition: 99}) // no such partition: left for Partition to refuse
	tr.OpenAll(context.Background(), tps)
	tr.mu.Lock()
	open := len(tr.parts)
	tr.mu.Unlock()
	if open != 40 {
		t.Fatalf("%d partitions open after OpenAll, want 40", open)
	}
	for _, tp := range tps[:40] {
		p, err := tr.Partition(context.Background(), tp)
		if err != nil || p.HighWatermark() != 0 {
			t.Fatalf("%v: %v", tp, err)
		}
	}
	if _, err := tr.Partition(context.Background(), tps[40]); err == nil {
		t.Fatal("partition 99 of a 40-partition topic opened")
	}
}
