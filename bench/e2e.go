package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// E2EResult is end-to-end latency: from a record's Produce call to a
// tailing consumer receiving it.
type E2EResult struct {
	Rate    float64       `json:"rate"`
	Records int64         `json:"records"`
	P50     time.Duration `json:"p50_ns"`
	P99     time.Duration `json:"p99_ns"`
	P999    time.Duration `json:"p999_ns"`
	Max     time.Duration `json:"max_ns"`
	// FlushP50 and FlushP99 are the node's strata_flush_duration_seconds
	// (taking pending blocks to their commit: PUT and etcd) during the
	// phase, and PutP99 its object-store PUTs' p99 (histogram bucket
	// bounds; Strata only): where the end-to-end time goes.
	FlushP50 time.Duration `json:"flush_p50_ns,omitempty"`
	FlushP99 time.Duration `json:"flush_p99_ns,omitempty"`
	PutP99   time.Duration `json:"put_p99_ns,omitempty"`
}

// EndToEnd produces records of size bytes to topic at rate records/s with
// one acks=all producer while one consumer tails the topic, and reports the
// latency from each Produce call to the consumer's poll returning it. The
// first warmup of records is left out of the percentiles. Every record must
// arrive exactly once (ErrVerify otherwise).
func EndToEnd(ctx context.Context, addr, topic string, size, records int, rate float64, warmup, limit time.Duration, opts ...kgo.Opt) (E2EResult, error) {
	res := E2EResult{Rate: rate}
	if size < 16 {
		size = 16
	}
	cons, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500 * time.Millisecond)}, opts...)...)
	if err != nil {
		return res, err
	}
	defer cons.Close()
	prod, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(time.Millisecond)}, opts...)...)
	if err != nil {
		return res, err
	}
	defer prod.Close()
	if err := prod.Ping(ctx); err != nil {
		return res, err
	}
	start := time.Now()
	lctx, cancel := context.WithDeadline(ctx, start.Add(limit))
	defer cancel()

	lat := make([]int64, records)
	seen := make([]bool, records)
	var mu sync.Mutex
	var verr error
	got := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for got < records && lctx.Err() == nil {
			fs := cons.PollFetches(lctx)
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) {
				if len(r.Value) < 16 {
					return
				}
				id := binary.BigEndian.Uint64(r.Value)
				sent := int64(binary.BigEndian.Uint64(r.Value[8:]))
				if id >= uint64(records) || seen[id] {
					mu.Lock()
					if verr == nil {
						verr = fmt.Errorf("%w: end-to-end: record %d read twice or unknown", ErrVerify, id)
					}
					mu.Unlock()
					return
				}
				seen[id] = true
				got++
				lat[id] = now.UnixNano() - sent
			})
		}
	}()
	var prodErr error
	var pmu sync.Mutex
	var warmN int
	for i := 0; i < records && lctx.Err() == nil; i++ {
		due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if w := time.Until(due); w > 0 {
			select {
			case <-time.After(w):
			case <-lctx.Done():
			}
		}
		v := make([]byte, size)
		binary.BigEndian.PutUint64(v, uint64(i))
		now := time.Now()
		binary.BigEndian.PutUint64(v[8:], uint64(now.UnixNano()))
		if now.Sub(start) < warmup {
			warmN = i + 1
		}
		prod.Produce(lctx, &kgo.Record{Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				pmu.Lock()
				if prodErr == nil {
					prodErr = err
				}
				pmu.Unlock()
			}
		})
	}
	if err := prod.Flush(lctx); err != nil && prodErr == nil {
		prodErr = err
	}
	<-done
	if prodErr != nil {
		return res, fmt.Errorf("bench: end-to-end produce: %w", prodErr)
	}
	if verr != nil {
		return res, verr
	}
	if got != records {
		return res, fmt.Errorf("%w: end-to-end: %d of %d records arrived within %v", ErrVerify, got, records, limit)
	}
	kept := lat[min(warmN, len(lat)-1):]
	sort.Slice(kept, func(i, j int) bool { return kept[i] < kept[j] })
	res.Records = int64(records)
	res.P50, res.P99, res.P999 = quantile(kept, 0.5), quantile(kept, 0.99), quantile(kept, 0.999)
	res.Max = time.Duration(kept[len(kept)-1])
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	return res, nil
}
