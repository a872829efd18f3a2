package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// flushGrace is how long Produce waits, after its time limit stopped new
// records, for the ones in flight to be acknowledged.
const flushGrace = 2 * time.Minute

// CreateTopic creates topic with the given partition count through the
// Kafka protocol. An existing topic is an error: a bench must start empty.
func CreateTopic(ctx context.Context, addr, topic string, partitions int32) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return fmt.Errorf("bench: client: %w", err)
	}
	defer cl.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30_000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic = topic
	rt.NumPartitions = partitions
	rt.ReplicationFactor = 1
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("bench: create topic %s: %w", topic, err)
	}
	if len(resp.Topics) != 1 {
		return fmt.Errorf("bench: create topic %s: %d topics in response", topic, len(resp.Topics))
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		return fmt.Errorf("bench: create topic %s: %w", topic, err)
	}
	return nil
}

// ProduceOptions configures Produce.
type ProduceOptions struct {
	// Topic to produce to; it must exist.
	Topic string
	// Records is how many records to produce, at most the ledger's capacity;
	// 0 = the capacity.
	Records int
	// Producers is the number of clients producing at once, each with its
	// own connections; default 1.
	Producers int
	// TimeLimit stops issuing new records after this long (those in flight
	// are still awaited); default 5 minutes.
	TimeLimit time.Duration
	// Rate, when positive, paces the producers to this many records per
	// second in total, so latency is measured below saturation instead of
	// as the time records queue in the client's buffer.
	Rate float64
	// LatencyWarmup leaves the records issued in the first this-long out of
	// the latency percentiles (they are still produced and checked): their
	// latency includes the node opening each partition on first use
	// (acquiring leadership in etcd), a one-off cost.
	LatencyWarmup time.Duration
	// ClientOpts are added to each producer's options (after the defaults:
	// acks=all, idempotent, franz-go's default linger and batching).
	ClientOpts []kgo.Opt
}

// ProduceResult is what a produce run measured.
type ProduceResult struct {
	Records       int64         `json:"records"`
	Bytes         int64         `json:"bytes"`
	Elapsed       time.Duration `json:"elapsed_ns"`
	RecordsPerSec float64       `json:"records_per_sec"`
	MBPerSec      float64       `json:"mb_per_sec"`
	// Latency of each record from its Produce call to its acks=all promise,
	// which includes the time it waited in the client's buffer.
	P50  time.Duration `json:"p50_ns"`
	P99  time.Duration `json:"p99_ns"`
	P999 time.Duration `json:"p999_ns"`
	Max  time.Duration `json:"max_ns"`
	// TimedOut is set when TimeLimit stopped the run before Records.
	TimedOut bool `json:"timed_out"`
}

// Produce writes records of l to addr with acks=all from opts.Producers
// clients at once and records where each landed. It returns an error
// wrapping ErrVerify unless every issued record was acknowledged.
func Produce(ctx context.Context, addr string, l *Ledger, opts ProduceOptions) (ProduceResult, error) {
	var res ProduceResult
	if opts.Topic == "" {
		return res, errors.New("bench: produce needs a topic")
	}
	if l.Issued() != 0 {
		return res, errors.New("bench: a ledger can be produced once")
	}
	n := int64(opts.Records)
	if n <= 0 || n > int64(l.Capacity()) {
		n = int64(l.Capacity())
	}
	producers := max(opts.Producers, 1)
	limit := opts.TimeLimit
	if limit <= 0 {
		limit = 5 * time.Minute
	}

	clients := make([]*kgo.Client, 0, producers)
	defer func() {
		for _, cl := range clients {
			cl.Close()
		}
	}()
	for range producers {
		copts := []kgo.Opt{
			kgo.SeedBrokers(addr),
			kgo.DefaultProduceTopic(opts.Topic),
			kgo.RequiredAcks(kgo.AllISRAcks()),
			// A stuck broker fails the run instead of hanging it.
			kgo.RecordDeliveryTimeout(limit + flushGrace),
		}
		cl, err := kgo.NewClient(append(copts, opts.ClientOpts...)...)
		if err != nil {
			return res, fmt.Errorf("bench: producer client: %w", err)
		}
		clients = append(clients, cl)
	}
	// Fetch metadata before the clock starts, so the first records do not
	// carry the connection set-up in their latency.
	for _, cl := range clients {
		if err := cl.Ping(ctx); err != nil {
			return res, fmt.Errorf("bench: producer ping: %w", err)
		}
	}

	start := time.Now()
	deadline := start.Add(limit)
	var next atomic.Int64
	var timedOut atomic.Bool
	var wg sync.WaitGroup
	for _, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				now := time.Now()
				if now.After(deadline) {
					timedOut.Store(true)
					return
				}
				id := next.Add(1) - 1
				if id >= n {
					return
				}
				if opts.Rate > 0 {
					// Record id is due at start + id/Rate; waiting for it
					// is pacing, not synchronisation.
					due := start.Add(time.Duration(float64(id) / opts.Rate * float64(time.Second)))
					if wait := due.Sub(now); wait > 0 {
						select {
						case <-time.After(wait):
						case <-ctx.Done():
							// The id is taken: issue it anyway so the
							// ledger's ids stay a dense prefix.
						}
					}
				}
				r := &kgo.Record{Value: l.issue(id)}
				sent := time.Now()
				warm := sent.Sub(start) < opts.LatencyWarmup
				cl.Produce(ctx, r, func(r *kgo.Record, err error) {
					lat := time.Since(sent)
					if warm {
						lat = -1
					}
					l.ack(id, r.Partition, r.Offset, lat, err)
				})
			}
		}()
	}
	wg.Wait()
	fctx, cancel := context.WithTimeout(ctx, flushGrace)
	defer cancel()
	var flushErr error
	for _, cl := range clients {
		if err := cl.Flush(fctx); err != nil && flushErr == nil {
			flushErr = err
		}
	}
	res.Elapsed = time.Since(start)
	if flushErr != nil {
		// Closing the clients (deferred) fails what is still buffered, so
		// the ledger's counts below are final once they are closed.
		for _, cl := range clients {
			cl.Close()
		}
		clients = nil
	}

	res.Records = l.Acked()
	res.Bytes = res.Records * int64(l.RecordSize())
	res.RecordsPerSec = float64(res.Records) / res.Elapsed.Seconds()
	res.MBPerSec = float64(res.Bytes) / 1e6 / res.Elapsed.Seconds()
	res.TimedOut = timedOut.Load()
	lat := l.latencies()
	res.P50, res.P99, res.P999 = quantile(lat, 0.50), quantile(lat, 0.99), quantile(lat, 0.999)
	if len(lat) > 0 {
		res.Max = time.Duration(lat[len(lat)-1])
	}
	if err := l.ProduceErr(); err != nil {
		return res, err
	}
	if flushErr != nil {
		return res, fmt.Errorf("bench: flush: %w", flushErr)
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	return res, nil
}
