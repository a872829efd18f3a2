package e2e

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-io/strata/metadata"
)

// keyedStream produces records keyed by a zero-padded sequence number
// ("000042") through one client and counts their outcomes, for the fault
// tests: they produce part of the stream, break something, produce the rest,
// and then check every key is stored exactly once (checkEachKeyOnce).
type keyedStream struct {
	ctx      context.Context
	cl       *kgo.Client
	topic    string
	wg       sync.WaitGroup
	acked    atomic.Int64
	failed   atomic.Int64
	firstErr atomic.Value
}

func newKeyedStream(ctx context.Context, cl *kgo.Client, topic string) *keyedStream {
	return &keyedStream{ctx: ctx, cl: cl, topic: topic}
}

// produce sends records from..to-1 without waiting for them.
func (s *keyedStream) produce(from, to int) {
	for i := from; i < to; i++ {
		s.wg.Add(1)
		r := &kgo.Record{Topic: s.topic, Key: fmt.Appendf(nil, "%06d", i), Value: fmt.Appendf(nil, "value-%06d", i)}
		s.cl.Produce(s.ctx, r, func(_ *kgo.Record, err error) {
			defer s.wg.Done()
			if err != nil {
				s.failed.Add(1)
				s.firstErr.CompareAndSwap(nil, err)
				return
			}
			s.acked.Add(1)
		})
	}
}

// wait waits for every record produced so far and fails the test if any
// failed for good (the clients retry until their context ends).
func (s *keyedStream) wait(t *testing.T) {
	t.Helper()
	s.wg.Wait()
	if n := s.failed.Load(); n > 0 {
		t.Fatalf("%d records failed for good; first: %v", n, s.firstErr.Load())
	}
}

// checkEachKeyOnce fails the test unless got holds the keys 000000 to
// total-1 exactly once each, in key order within each partition.
func checkEachKeyOnce(t *testing.T, got []rec, total int) {
	t.Helper()
	seen := map[string]int{}
	last := map[int32]string{}
	for _, r := range got {
		seen[r.Key]++
		if prev, ok := last[r.Partition]; ok && r.Key < prev {
			t.Fatalf("partition %d: %s after %s: order broken", r.Partition, r.Key, prev)
		}
		last[r.Partition] = r.Key
	}
	for i := 0; i < total; i++ {
		if k := fmt.Sprintf("%06d", i); seen[k] != 1 {
			t.Fatalf("record %s stored %d times, want exactly once (all %d were acknowledged)", k, seen[k], total)
		}
	}
}

// startProcCluster runs n `strata serve` processes (node ids 0..n-1, 6
// partitions per auto-created topic) on one etcd the test starts and one
// file:// object store, and returns them with their Kafka addresses.
func startProcCluster(t *testing.T, ctx context.Context, n int) ([]*strataProc, []string) {
	t.Helper()
	etcd, err := metadata.StartEmbedded(ctx, metadata.EmbeddedConfig{Dir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { etcd.Close() })
	store := "file://" + t.TempDir()
	var procs []*strataProc
	var seeds []string
	for id := 0; id < n; id++ {
		p := startStrata(t, serveArgs{
			dataDir: t.TempDir(), etcd: etcd.Endpoints(), objectStore: store, partitions: 6,
			extra: []string{"--node-id", fmt.Sprint(id)},
		}, freeAddr(t), freeAddr(t))
		procs = append(procs, p)
		seeds = append(seeds, p.kafkaAddr)
	}
	return procs, seeds
}
