package chaos

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The compacted workload: one idempotent acks=all producer writes updates
// to 200 keys of a compacted topic (small segments, so the roller and the
// compactor run all through the schedule), remembering the latest
// acknowledged value of each key. At the end a fresh reader reads the topic
// from offset 0 and checks, per key, that the last value it reads is at
// least as new as the latest acknowledged one (a newer one may have been
// stored without its ack), and that offsets only increase.

// CompactLoad runs the compacted workload.
type CompactLoad struct {
	seeds []string
	log   io.Writer
	topic string

	ctx    context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	acked  map[string]int // key → newest acknowledged sequence
	sent   int
	failed int
}

// compactKeys is how many keys the compacted workload updates.
const compactKeys = 200

// StartCompactLoad creates the compacted topic and starts its producer.
func StartCompactLoad(ctx context.Context, seeds []string, log io.Writer, admin *kgo.Client, topic string, parts int32) (*CompactLoad, error) {
	configs := map[string]string{
		"cleanup.policy": "compact", "segment.bytes": "4096", "segment.ms": "2000",
		"min.cleanable.dirty.ratio": "0.2", "delete.retention.ms": "1000",
	}
	if err := retry(ctx, 30*time.Second, func(ctx context.Context) error { return createTopic(ctx, admin, topic, parts, configs) }); err != nil {
		return nil, err
	}
	l := &CompactLoad{seeds: seeds, log: log, topic: topic, acked: map[string]int{}}
	l.ctx, l.stop = context.WithCancel(context.Background())
	cl, err := kgo.NewClient(clientOpts(seeds, log, "compact", kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(5*time.Millisecond))...)
	if err != nil {
		return nil, err
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer cl.Close()
		var inflight sync.WaitGroup
		for seq := 0; l.ctx.Err() == nil; seq++ {
			key := fmt.Sprintf("k%03d", seq%compactKeys)
			l.mu.Lock()
			l.sent++
			l.mu.Unlock()
			inflight.Add(1)
			// The value carries its sequence. Never a tombstone: a
			// deleted key could not be told from a lost one.
			cl.Produce(l.ctx, &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte(key + "=" + strconv.Itoa(seq))}, func(r *kgo.Record, err error) {
				defer inflight.Done()
				l.mu.Lock()
				defer l.mu.Unlock()
				if err != nil {
					l.failed++
					return
				}
				if cur, ok := l.acked[key]; !ok || seq > cur {
					l.acked[key] = seq
				}
			})
			select {
			case <-l.ctx.Done():
			case <-time.After(5 * time.Millisecond):
			}
		}
		// Let what is in flight finish, bounded.
		done := make(chan struct{})
		go func() { inflight.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
		}
	}()
	return l, nil
}

// StopProducing stops the producer and waits for its acks.
func (l *CompactLoad) StopProducing() {
	l.stop()
	l.wg.Wait()
}

// CompactResult is the compacted workload's verdict.
type CompactResult struct {
	Sent, Failed, Acked int
	Records             int // records the final read got
	Keys                int // keys acknowledged at least once
	Stale               int // keys whose last value read is older than their newest ack
	Missing             int // acknowledged keys never read
	Backwards           int // offsets that did not increase
	Evidence            []string
}

// Violations is how many checks failed.
func (r CompactResult) Violations() int { return r.Stale + r.Missing + r.Backwards }

// Check reads the topic from offset 0 until it has been quiet for quiet (at
// most limit) and checks every key.
func (l *CompactLoad) Check(ctx context.Context, quiet, limit time.Duration) (CompactResult, error) {
	rd, err := kgo.NewClient(clientOpts(l.seeds, l.log, "compact-final",
		kgo.ConsumeTopics(l.topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))...)
	if err != nil {
		return CompactResult{}, err
	}
	defer rd.Close()
	var res CompactResult
	var ev evidence
	last := map[string]int{}
	lastOff := map[int32]int64{}
	deadline := time.Now().Add(limit)
	quietFrom := time.Now()
	for time.Since(quietFrom) < quiet && time.Now().Before(deadline) && ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := rd.PollFetches(pctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			quietFrom = time.Now()
			res.Records++
			if prev, ok := lastOff[r.Partition]; ok && r.Offset <= prev {
				res.Backwards++
				ev.add("offsets backwards", "partition %d: offset %d after %d", r.Partition, r.Offset, prev)
			}
			lastOff[r.Partition] = r.Offset
			k, v, ok := strings.Cut(string(r.Value), "=")
			if !ok {
				return
			}
			if seq, err := strconv.Atoi(v); err == nil {
				last[k] = seq
			}
		})
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	res.Sent, res.Failed, res.Keys = l.sent, l.failed, len(l.acked)
	res.Acked = l.sent - l.failed
	keys := make([]string, 0, len(l.acked))
	for k := range l.acked {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		want := l.acked[k]
		got, ok := last[k]
		switch {
		case !ok:
			res.Missing++
			ev.add("key missing", "%s: newest ack %d, never read", k, want)
		case got < want:
			res.Stale++
			ev.add("stale value", "%s: last value read is %d, newest ack %d", k, got, want)
		}
	}
	res.Evidence = ev.lines
	return res, nil
}
