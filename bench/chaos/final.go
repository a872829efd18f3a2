package chaos

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// FinalRead is what a fresh consumer read of one topic: each partition
// from its log start to its high watermark.
type FinalRead struct {
	Topic    string
	Parts    int32
	LogStart map[int32]int64
	HWM      map[int32]int64
	Recs     map[int32][]readRec
	// ReadTo is, per partition, the offset the read reached (HWM when it
	// finished): records at or past it were not seen, neither present nor
	// missing.
	ReadTo map[int32]int64
	// Records and Took: how much the read got and how long it took.
	Records int
	Took    time.Duration
	// Incomplete lists partitions not read up to their high watermark in
	// time, with where the read stopped.
	Incomplete []string
}

// finalRead reads every partition of topic from its log start to its high
// watermark with a fresh client, as reader "final <topic>". It gives up
// when no partition advanced for stall, or after limit in all: a read that
// keeps advancing is slow, not stuck.
func finalRead(ctx context.Context, seeds []string, log io.Writer, admin *kgo.Client, rec *Recorder, topic string, stall, limit time.Duration) (*FinalRead, error) {
	start := time.Now()
	deadline := start.Add(limit)
	var parts int32
	if err := retry(ctx, stall, func(ctx context.Context) error {
		var err error
		parts, err = partitionCount(ctx, admin, topic)
		return err
	}); err != nil {
		return nil, fmt.Errorf("final read: partitions of %s: %w", topic, err)
	}
	fr := &FinalRead{Topic: topic, Parts: parts, Recs: map[int32][]readRec{}}
	var err error
	if fr.LogStart, err = listOffsetsRetry(ctx, admin, topic, parts, -2, stall); err != nil {
		return nil, fmt.Errorf("final read: %w", err)
	}
	if fr.HWM, err = listOffsetsRetry(ctx, admin, topic, parts, -1, stall); err != nil {
		return nil, fmt.Errorf("final read: %w", err)
	}
	offs := map[int32]kgo.Offset{}
	next := map[int32]int64{}
	for p := range parts {
		offs[p] = kgo.NewOffset().AtStart()
		next[p] = fr.LogStart[p]
	}
	cl, err := kgo.NewClient(clientOpts(seeds, log, "final-"+topic,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}),
		kgo.FetchMaxWait(200*time.Millisecond),
	)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	rl := rec.newReader("final "+topic, false)
	done := func() bool {
		for p := range parts {
			if next[p] < fr.HWM[p] {
				return false
			}
		}
		return true
	}
	progress := time.Now()
	for !done() && time.Now().Before(deadline) && time.Since(progress) < stall && ctx.Err() == nil {
		until := progress.Add(stall)
		if deadline.Before(until) {
			until = deadline
		}
		pctx, cancel := context.WithDeadline(ctx, until)
		fs := cl.PollFetches(pctx)
		cancel()
		fs.EachError(func(_ string, _ int32, err error) { rl.fetchErr(err.Error()) })
		if fs.NumRecords() > 0 {
			progress = time.Now()
		}
		fs.EachRecord(func(r *kgo.Record) {
			rec.read(rl, tpo{tp{r.Topic, r.Partition}, r.Offset}, string(r.Value))
			fr.Recs[r.Partition] = append(fr.Recs[r.Partition], readRec{Offset: r.Offset, Value: string(r.Value)})
			if r.Offset+1 > next[r.Partition] {
				next[r.Partition] = r.Offset + 1
			}
		})
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	fr.ReadTo = next
	fr.Took = time.Since(start)
	why := fmt.Sprintf("no record for %s", stall)
	if time.Since(progress) < stall {
		why = fmt.Sprintf("still reading after %s", limit)
	}
	for p := range parts {
		fr.Records += len(fr.Recs[p])
		if next[p] < fr.HWM[p] {
			fr.Incomplete = append(fr.Incomplete, fmt.Sprintf("%s/%d: read to %d of [%d, %d) (%s)", topic, p, next[p], fr.LogStart[p], fr.HWM[p], why))
		}
	}
	return fr, nil
}

// probeResult is when a partition served a produce and a fetch again.
type probeResult struct {
	OK    bool
	At    time.Duration // since the run started
	Error string
}

// probe produces one acks=all record to every partition of each topic and
// fetches it back, retrying until deadline (since the run started). The
// probe records count as acknowledged acks=all records (Recorder.ackProbe).
func probe(ctx context.Context, seeds []string, log io.Writer, rec *Recorder, topics map[string]int32, deadline time.Duration) (map[tp]probeResult, error) {
	pcl, err := kgo.NewClient(clientOpts(seeds, log, "probe",
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)...)
	if err != nil {
		return nil, err
	}
	defer pcl.Close()
	ctx, cancel := context.WithTimeout(ctx, deadline-rec.since())
	defer cancel()
	var mu sync.Mutex
	out := map[tp]probeResult{}
	var wg sync.WaitGroup
	for topic, parts := range topics {
		for p := range parts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k := tp{topic, p}
				var last error
				for attempt := 0; ctx.Err() == nil; attempt++ {
					// A failed attempt may still have been stored: each
					// attempt writes a value of its own.
					value := fmt.Sprintf("probe-%s-%d-%d", topic, p, attempt)
					r := &kgo.Record{Topic: topic, Partition: p, Value: []byte(value)}
					if last = pcl.ProduceSync(ctx, r).FirstErr(); last != nil {
						hold(ctx, 200*time.Millisecond)
						continue
					}
					o := tpo{k, r.Offset}
					rec.ackProbe(o, value)
					if last = fetchOne(ctx, seeds, log, o, value); last == nil {
						mu.Lock()
						out[k] = probeResult{OK: true, At: rec.since()}
						mu.Unlock()
						return
					}
				}
				mu.Lock()
				out[k] = probeResult{Error: fmt.Sprint(last)}
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	return out, nil
}

// fetchOne reads offset o with a fresh client and checks it holds value.
func fetchOne(ctx context.Context, seeds []string, log io.Writer, o tpo, value string) error {
	cl, err := kgo.NewClient(clientOpts(seeds, log, fmt.Sprintf("probe-fetch-%s-%d", o.Topic, o.Partition),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{o.Topic: {o.Partition: kgo.NewOffset().At(o.Offset)}}),
		kgo.FetchMaxWait(200*time.Millisecond),
	)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		var got *kgo.Record
		fs.EachRecord(func(r *kgo.Record) {
			if got == nil && r.Offset == o.Offset {
				got = r
			}
		})
		if got != nil {
			if string(got.Value) != value {
				return fmt.Errorf("%s/%d offset %d holds %q, the probe wrote %q", o.Topic, o.Partition, o.Offset, got.Value, value)
			}
			return nil
		}
	}
	return ctx.Err()
}
