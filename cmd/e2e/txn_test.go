package e2e

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestExactlyOnceThroughKillNine runs franz-go's GroupTransactSession, the
// consume-transform-produce loop of Kafka Streams' exactly_once_v2, on a
// three-node cluster: two workers copy an input topic to an output topic
// in transactions, committing their input offsets in the same
// transactions, while a node is killed with -9 and restarted. A
// read_committed reader of the output must then find every input record
// exactly once: an aborted transaction's records, or a commit that lost its
// offsets, would show up as a duplicate; a lost one as a gap.
func TestExactlyOnceThroughKillNine(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	procs, seeds := startProcCluster(t, ctx, 3)
	cl := newClient(t, seeds[0], kgo.SeedBrokers(seeds...), kgo.RequiredAcks(kgo.AllISRAcks()))
	ensureTopic(t, ctx, cl, "eos-in")
	ensureTopic(t, ctx, cl, "eos-out")
	waitLeaders(t, ctx, cl, "eos-in", 6)
	waitLeaders(t, ctx, cl, "eos-out", 6)

	const total = 4000
	in := newKeyedStream(ctx, cl, "eos-in")
	in.produce(0, total)
	in.wait(t)

	var copied atomic.Int64 // records in committed transactions
	var wg sync.WaitGroup
	workCtx, stopWork := context.WithCancel(ctx)
	defer stopWork()
	var workErr atomic.Value
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := copyLoop(workCtx, seeds, fmt.Sprintf("eos-worker-%d", w), &copied); err != nil {
				workErr.CompareAndSwap(nil, err)
			}
		}()
	}
	waitUntil(t, ctx, "a third of the input copied", func() bool { return copied.Load() >= total/3 })
	victim := procs[1]
	victim.kill(t)
	t.Logf("killed node 1 with kill -9 after %d records were copied", copied.Load())
	time.Sleep(2 * time.Second)
	procs[1] = victim.restart(t)
	t.Logf("node 1 restarted")

	out := consumeN(t, ctx, seeds[0], "eos-out", total, kgo.SeedBrokers(seeds...), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	stopWork()
	wg.Wait()
	if err, _ := workErr.Load().(error); err != nil {
		t.Fatalf("a worker failed for good: %v", err)
	}
	// Read it all again once the workers are gone: anything committed
	// after the first total records would be a duplicate.
	quiet, cancelQuiet := context.WithTimeout(ctx, 5*time.Second)
	defer cancelQuiet()
	all := consumeAll(t, quiet, seeds, "eos-out")
	if len(all) != total {
		t.Fatalf("read_committed output holds %d records, want %d (first read gave %d)", len(all), total, len(out))
	}
	seen := map[string]int{}
	for _, r := range all {
		seen[r.Key]++
	}
	for i := range total {
		if k := fmt.Sprintf("%06d", i); seen[k] != 1 {
			t.Fatalf("input record %s is in the output %d times, want exactly once", k, seen[k])
		}
	}
}

// copyLoop copies eos-in to eos-out in transactions until ctx ends. Errors
// a worker recovers from (aborts, a node going away) are retried; only a
// fatal one is returned.
func copyLoop(ctx context.Context, seeds []string, id string, copied *atomic.Int64) error {
	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(seeds...),
		kgo.TransactionalID(id),
		kgo.TransactionTimeout(20*time.Second),
		kgo.ConsumerGroup("eos-copy"),
		kgo.ConsumeTopics("eos-in"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.ProducerLinger(2*time.Millisecond),
		kgo.RecordRetries(1000),
	)
	if err != nil {
		return err
	}
	defer sess.Close()
	for ctx.Err() == nil {
		fs := sess.PollRecords(ctx, 200)
		if ctx.Err() != nil {
			return nil
		}
		n := 0
		if err := sess.Begin(); err != nil {
			return fmt.Errorf("%s: begin: %w", id, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			n++
			sess.Produce(ctx, &kgo.Record{Topic: "eos-out", Key: r.Key, Value: r.Value}, nil)
		})
		committed, err := sess.End(ctx, kgo.TryCommit)
		switch {
		case err != nil && errors.Is(err, context.Canceled):
			return nil
		case err != nil:
			// The session aborted and rewinds to the last committed
			// offsets; the next poll retries the records.
			time.Sleep(100 * time.Millisecond)
		case committed:
			copied.Add(int64(n))
		}
	}
	return nil
}

// consumeAll reads topic from the start at read_committed until ctx ends.
func consumeAll(t *testing.T, ctx context.Context, seeds []string, topic string) []rec {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []rec
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { out = append(out, fromKgo(r)) })
	}
	return out
}

// waitUntil polls cond until it holds, failing the test when ctx ends.
func waitUntil(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
