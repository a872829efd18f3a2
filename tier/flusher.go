package tier

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/strata-io/strata/metadata"
	// Aliased: this package's func retry has the name.
	backoff "github.com/strata-io/strata/metadata/retry"
	"github.com/strata-io/strata/segment"
)

// runFlusher makes pending blocks durable every FlushInterval, or sooner when
// FlushBytes are pending.
//
// Flushes are pipelined: up to FlushesInFlight of them are under way at once,
// so the next flush's PUT overlaps the previous one's etcd commit. Two PUTs
// overlap only when FlushBytes are pending (see putting below). Commits
// stay strictly in the order the flushes were taken (one committer goroutine
// takes them from a FIFO), so each partition's commits reach etcd in offset
// order. A flush starts only when a slot is free: while every slot is busy,
// pending blocks keep accumulating into the next, larger flush.
func (t *Tier) runFlusher() {
	defer close(t.done)
	// runCtx bounds every object-store and etcd call of the flusher. It lives
	// until Close's deadline, so a flush under way when Close is called still
	// completes if it can.
	runCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-t.closing
		ctx := <-t.final
		select {
		case <-ctx.Done():
			cancel()
		case <-runCtx.Done():
		}
	}()

	depth := t.cfg.FlushesInFlight
	slots := make(chan struct{}, depth)  // one token per flush under way
	flights := make(chan *flight, depth) // FIFO to the committer
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		for f := range flights {
			t.commitFlight(runCtx, f)
			<-slots
		}
	}()
	// drain waits until every flush under way has committed (or failed).
	drain := func() {
		for range depth {
			slots <- struct{}{}
		}
		for range depth {
			<-slots
		}
	}
	// putting counts PUTs under way. While one is, a tick or a wake-up
	// starts no second PUT unless FlushBytes are pending: the data waits
	// for the PUT to end (which wakes the flusher) and goes in one larger
	// object whose PUT then overlaps the previous flush's commit. Without
	// this rule a busy node wrote an object per tick per PUT in flight
	// (161 PUTs per GB where sequential flushes wrote ~80).
	var putting atomic.Int32
	// flush starts one flush if there is anything to flush (and, unless
	// force, the rule above allows it), waiting for a free slot first. It
	// reports whether it started one.
	flush := func(force bool) bool {
		if !force && putting.Load() > 0 && t.buf.load() < int64(t.cfg.FlushBytes) {
			return false
		}
		slots <- struct{}{}
		f := t.prepareFlush()
		if f == nil {
			<-slots
			return false
		}
		f.put = make(chan error, 1)
		putting.Add(1)
		go func() {
			err := t.putFlight(runCtx, f)
			putting.Add(-1)
			t.wakeFlusher()
			f.put <- err
		}()
		flights <- f
		return true
	}
	defer func() {
		close(flights)
		<-committed
	}()

	ticker := time.NewTicker(t.cfg.FlushInterval)
	defer ticker.Stop()
	// Producer expiry runs here, between flushes, with none under way (see
	// expireProducers).
	expireEvery := min(max(t.cfg.ProducerIDExpiration/10, 100*time.Millisecond), time.Minute)
	lastExpire, expireMore := time.Now(), false
	for {
		select {
		case <-ticker.C:
		case <-t.kick:
		case <-t.closing:
			// The final flushes: everything appended before Close (a
			// partition may hold several groups, each its own flush).
			for i := 0; i < 1000 && runCtx.Err() == nil; i++ {
				if !flush(true) {
					break
				}
			}
			drain()
			return
		}
		flush(false)
		if expireMore || time.Since(lastExpire) >= expireEvery {
			drain()
			lastExpire = time.Now()
			expireMore = t.expireProducers(runCtx, lastExpire)
		}
	}
}

// flushOnce runs one flush to its end: take, put, commit. It reports whether
// there was anything to flush. Tests use it to flush synchronously.
func (t *Tier) flushOnce(ctx context.Context) bool {
	f := t.prepareFlush()
	if f == nil {
		return false
	}
	f.put = make(chan error, 1)
	f.put <- t.putFlight(ctx, f)
	t.commitFlight(ctx, f)
	return true
}

// work is one partition's share of a flush.
type work struct {
	p      *Partition
	blocks [][]byte
	metas  []segment.BlockMeta
	g      *flushGroup
	// producers is the state of the producers that appended in these
	// blocks, as of their last offset.
	producers []byte
	// stable is the last stable offset as of the blocks' end, and aborted
	// the aborted-index entries of their abort markers.
	stable  int64
	aborted []metadata.AbortedTxn
	commit  metadata.PartitionCommit
}

// flight is one flush under way: its object, and the outcome of its PUT.
type flight struct {
	ws      []*work
	key     string
	obj     []byte
	records int64
	start   time.Time
	put     chan error // the PUT's outcome, sent once
	putAt   time.Time  // when the PUT completed (set by putFlight)
}

// prepareFlush takes every partition's oldest pending group and builds the
// flush object holding them. It returns nil when there is nothing to flush.
func (t *Tier) prepareFlush() *flight {
	var ws []*work
	more := false
	for _, p := range t.snapshot() {
		if pg, producers, stable, m, ok := p.takePending(); ok {
			ws = append(ws, &work{p: p, blocks: pg.blocks, metas: pg.metas, g: pg.g, producers: producers, stable: stable, aborted: pg.aborted})
			more = more || m
		}
	}
	if len(ws) == 0 {
		return nil
	}
	if more {
		// A partition has another group ready: flush it next, now.
		t.wakeFlusher()
	}
	start := time.Now()
	slices.SortFunc(ws, func(a, b *work) int {
		if c := bytes.Compare(a.p.topicID[:], b.p.topicID[:]); c != 0 {
			return c
		}
		return int(a.p.tp.Partition - b.p.tp.Partition)
	})

	key := t.objectKey(start)
	b := segment.NewFlushObjectBuilder(t.cfg.NodeID, start)
	// One allocation for the whole object: growing it run by run copied
	// each flush's bytes several times (a quarter of the produce path's
	// CPU in a profile of 1 KiB records).
	size := len(ws)*segment.FlushDirEntrySize + 64
	for _, w := range ws {
		for _, blk := range w.blocks {
			size += len(blk)
		}
	}
	b.Grow(size)
	var records int64
	for _, w := range ws {
		run, err := b.AddRun(segment.RunKey{TopicID: w.p.topicID, Partition: w.p.tp.Partition}, w.blocks)
		if err != nil {
			// Our own blocks failed to frame: a bug, not bad input. Fail
			// this partition rather than the flush.
			t.logger.Error("flush: add run", "topic", w.p.tp.Topic, "partition", w.p.tp.Partition, "err", err)
			t.finish(w, fmt.Errorf("%w: %w", ErrStorage, err), true)
			w.p = nil
			continue
		}
		n := run.LastOffset - run.BaseOffset + 1
		records += n
		w.commit = metadata.PartitionCommit{
			Leadership: w.p.lead,
			Entry: metadata.IndexEntry{
				BaseOffset:   run.BaseOffset,
				LastOffset:   run.LastOffset,
				MaxTimestamp: run.MaxTimestamp,
				Object:       key,
				Position:     run.Pos,
				Size:         run.Size,
				Records:      n,
			},
			DurableOffset: run.LastOffset + 1,
			Producers:     w.producers,
			Aborted:       w.aborted,
		}
		if w.stable <= run.LastOffset {
			stable := w.stable
			w.commit.StableOffset = &stable
		}
	}
	ws = slices.DeleteFunc(ws, func(w *work) bool { return w.p == nil })
	if len(ws) == 0 {
		return nil
	}
	return &flight{ws: ws, key: key, obj: b.Finish(), records: records, start: start}
}

// putFlight writes f's object, retrying until it succeeds or ctx ends.
func (t *Tier) putFlight(ctx context.Context, f *flight) error {
	err := retry(ctx, func() error { return t.bucket.Put(ctx, f.key, f.obj) }, func(err error, attempt int) {
		t.logger.Warn("flush: put object failed, retrying", "key", f.key, "attempt", attempt, "err", err)
	})
	f.putAt = time.Now()
	return err
}

// commitFlight waits for f's PUT, then commits its index entries and high
// watermarks and completes its groups. Flights are committed one at a time,
// in the order they were prepared.
func (t *Tier) commitFlight(ctx context.Context, f *flight) {
	ws := f.ws
	if err := <-f.put; err != nil {
		t.metrics.flushes.WithLabelValues("put_failed").Inc()
		t.failAll(ws, err)
		return
	}
	t.metrics.putBytes.Add(float64(len(f.obj)))
	// A partition an earlier flight failed must not commit: its earlier
	// offsets may not be durable, and its commit would leave a gap (etcd
	// would refuse it anyway, as a commit not starting at the durable
	// offset). Its groups complete with that flight's error. A partition
	// closed for any other reason (hand-off, Close) still commits what it
	// accepted; etcd's leadership compare decides.
	ws = slices.DeleteFunc(slices.Clone(ws), func(w *work) bool {
		if err := w.p.flushFailed(); err != nil {
			t.finish(w, err, false)
			return true
		}
		return false
	})
	if len(ws) == 0 {
		return
	}

	res := commitResult{fenced: make(map[metadata.TP]bool), rejected: make(map[*work]error), putAt: f.putAt}
	if err := t.commit(ctx, ws, f.key, f.obj, &res); err != nil {
		// The object may now be an orphan; the sweeper removes it.
		t.metrics.flushes.WithLabelValues("commit_failed").Inc()
		t.failAll(ws, err)
		return
	}
	for _, w := range ws {
		if err, ok := res.rejected[w]; ok {
			t.logger.Error("flush: etcd refused the commit; failing the partition's pending appends", "topic", w.p.tp.Topic, "partition", w.p.tp.Partition, "err", err)
			t.metrics.flushes.WithLabelValues("commit_rejected").Inc()
			t.finish(w, fmt.Errorf("%w: %w", ErrStorage, err), true)
			continue
		}
		if res.fenced[w.p.tp] {
			t.logger.Warn("flush: leadership fenced", "topic", w.p.tp.Topic, "partition", w.p.tp.Partition, "epoch", w.p.lead.Epoch)
			t.finish(w, ErrNotLeader, true)
			continue
		}
		w.p.advance(w.commit.DurableOffset)
		t.finish(w, nil, false)
	}
	t.metrics.flushes.WithLabelValues("ok").Inc()
	t.metrics.flushSeconds.Observe(time.Since(f.start).Seconds())
	t.metrics.flushObjectBytes.Observe(float64(len(f.obj)))
	t.metrics.flushRecords.Add(float64(f.records))
}

// commitResult collects what t.commit learns.
type commitResult struct {
	fenced   map[metadata.TP]bool
	rejected map[*work]error // commits etcd can never accept (metadata.IsPermanent)
	putAt    time.Time       // when the flush object was last written
}

// commit commits ws, retrying transient errors until ctx ends (then it
// returns the error, and the outcome of every commit is unknown). A
// permanent error (metadata.IsPermanent: a commit etcd refuses as such, or
// an invalid one) is never retried as is: the commits are split in halves
// and each half committed on its own, down to single partitions, so only the
// commits that can never succeed are rejected and every other one commits.
func (t *Tier) commit(ctx context.Context, ws []*work, key string, obj []byte, res *commitResult) error {
	commits := make([]metadata.PartitionCommit, len(ws))
	for i, w := range ws {
		commits[i] = w.commit
	}
	var fenced []metadata.TP
	err := retry(ctx, func() error {
		// The sweeper deletes unreferenced objects older than SweepGrace.
		// If etcd has been failing that long, write the object again so
		// it is young when the commit finally references it.
		if time.Since(res.putAt) > t.cfg.SweepGrace/2 {
			if err := t.bucket.Put(ctx, key, obj); err != nil {
				return err
			}
			res.putAt = time.Now()
		}
		var err error
		fenced, err = t.meta.CommitFlush(ctx, commits)
		if metadata.IsPermanent(err) {
			return permanentError{err}
		}
		return err
	}, func(err error, attempt int) {
		t.logger.Warn("flush: etcd commit failed, retrying", "key", key, "attempt", attempt, "err", err)
	})
	var pe permanentError
	switch {
	case err == nil:
		for _, tp := range fenced {
			res.fenced[tp] = true
		}
		return nil
	case !errors.As(err, &pe):
		return err
	case len(ws) == 1:
		res.rejected[ws[0]] = pe.err
		return nil
	}
	// Commits of the chunks before the failing one may have applied: the
	// halves retry them, and a commit applied already counts as committed.
	half := len(ws) / 2
	if err := t.commit(ctx, ws[:half], key, obj, res); err != nil {
		return err
	}
	return t.commit(ctx, ws[half:], key, obj, res)
}

// permanentError marks an error retry must not retry.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// failAll fails every group of a flush that could not be made durable. The
// partitions close: their later offsets were assigned after the lost ones, so
// only a fresh open at the durable offset keeps offsets dense.
func (t *Tier) failAll(ws []*work, err error) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		err = ErrClosed
	} else {
		err = fmt.Errorf("%w: %w", ErrStorage, err)
	}
	for _, w := range ws {
		t.finish(w, err, true)
	}
}

// finish completes w's group with err, closing its partition if asked.
func (t *Tier) finish(w *work, err error, closePartition bool) {
	if closePartition {
		w.p.failFlush(err)
		w.p.close(err, false)
	}
	t.buf.release(w.g.bytes)
	w.g.complete(err)
}

// objectKey names a flush object. The leading timestamp lets the sweeper
// list objects by age; node id and random suffix keep keys unique across
// restarts and nodes.
func (t *Tier) objectKey(now time.Time) string {
	var r [6]byte
	rand.Read(r[:])
	return fmt.Sprintf("flush/%013d-n%d-%s.sfo", now.UnixMilli(), t.cfg.NodeID, hex.EncodeToString(r[:]))
}

// retry calls fn under backoff.Flush (no attempt bound, full jitter from
// 10ms up to 2s; see metadata/retry) until it succeeds or ctx ends. An error
// wrapping a permanentError ends it at once and comes back as fn returned
// it, so the caller can errors.As it; once ctx has ended the error wraps
// ctx.Err().
func retry(ctx context.Context, fn func() error, onErr func(err error, attempt int)) error {
	return backoff.Do(ctx, backoff.Flush,
		func(context.Context) error { return fn() },
		backoff.Retryable(func(err error) bool {
			var pe permanentError
			return !errors.As(err, &pe)
		}),
		backoff.OnError(func(err error, attempt int, _ time.Duration) {
			if onErr != nil {
				onErr(err, attempt)
			}
		}))
}
