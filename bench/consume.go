package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ConsumeOptions configures Consume.
type ConsumeOptions struct {
	// Topic to read from the start.
	Topic string
	// TimeLimit bounds the pass; a pass that has not seen every record by
	// then fails the check. Default 5 minutes.
	TimeLimit time.Duration
	// ClientOpts are added to the consumer's options.
	ClientOpts []kgo.Opt
}

// ConsumeResult is what a consume pass measured.
type ConsumeResult struct {
	Records       int64         `json:"records"`
	Bytes         int64         `json:"bytes"`
	Elapsed       time.Duration `json:"elapsed_ns"`
	RecordsPerSec float64       `json:"records_per_sec"`
	MBPerSec      float64       `json:"mb_per_sec"`
	TimedOut      bool          `json:"timed_out"`
}

// Consume reads topic from offset 0 of every partition with one client (no
// consumer group) until it has seen every record l acknowledged, and checks
// each against l. The error wraps ErrVerify unless the pass saw each acked
// record exactly once and nothing else.
func Consume(ctx context.Context, addr string, l *Ledger, opts ConsumeOptions) (ConsumeResult, error) {
	var res ConsumeResult
	if opts.Topic == "" {
		return res, errors.New("bench: consume needs a topic")
	}
	limit := opts.TimeLimit
	if limit <= 0 {
		limit = 5 * time.Minute
	}
	copts := []kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.ConsumeTopics(opts.Topic),
		kgo.ConsumeStartOffset(kgo.NewOffset().AtStart()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}
	cl, err := kgo.NewClient(append(copts, opts.ClientOpts...)...)
	if err != nil {
		return res, fmt.Errorf("bench: consumer client: %w", err)
	}
	defer cl.Close()
	if err := cl.Ping(ctx); err != nil {
		return res, fmt.Errorf("bench: consumer ping: %w", err)
	}

	check := l.NewCheck()
	start := time.Now()
	pctx, cancel := context.WithDeadline(ctx, start.Add(limit))
	defer cancel()
	var fetchErr error
	for !check.Done() && pctx.Err() == nil {
		fs := cl.PollFetches(pctx)
		fs.EachError(func(topic string, p int32, err error) {
			if fetchErr == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				fetchErr = fmt.Errorf("bench: fetch %s/%d: %w", topic, p, err)
			}
		})
		if fetchErr != nil {
			break
		}
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			check.HighWatermark(p.Partition, p.HighWatermark)
			for _, r := range p.Records {
				check.Record(r.Partition, r.Offset, r.Value)
			}
		})
	}
	res.Elapsed = time.Since(start)
	res.Records = check.Unique()
	res.Bytes = check.Bytes()
	res.RecordsPerSec = float64(res.Records) / res.Elapsed.Seconds()
	res.MBPerSec = float64(res.Bytes) / 1e6 / res.Elapsed.Seconds()
	res.TimedOut = !check.Done() && pctx.Err() != nil
	if fetchErr != nil {
		return res, fetchErr
	}
	if err := check.Err(); err != nil {
		if res.TimedOut {
			return res, fmt.Errorf("%w (time limit %v reached)", err, limit)
		}
		return res, err
	}
	return res, nil
}
