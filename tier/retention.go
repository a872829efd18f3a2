package tier

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/metadata/topiccfg"
)

// applyRetention advances the log start offset past whole index entries
// that retention.ms or retention.bytes no longer keep, then deletes those
// entries. Like Kafka, it deletes whole units (here: index entries), never
// part of one.
func (p *Partition) applyRetention(ctx context.Context, tc topiccfg.Config, now time.Time) error {
	if tc.RetentionMs < 0 && tc.RetentionBytes < 0 {
		return nil
	}
	p.mu.Lock()
	// An open transaction's records stay until it ends: its abort must
	// still be able to hide them, its commit to show them.
	logStart, hw := p.logStart, p.lsoLocked()
	p.mu.Unlock()
	entries := p.t.meta.IndexEntries(p.tp, logStart)
	var total int64
	for _, e := range entries {
		total += e.Size
	}
	newStart := logStart
	for _, e := range entries {
		if e.LastOffset >= hw {
			break
		}
		expired := tc.RetentionMs >= 0 && e.MaxTimestamp < now.Add(-tc.RetentionMs).UnixMilli()
		// As Kafka does: drop a unit only if what remains still holds at
		// least retention.bytes.
		oversize := tc.RetentionBytes >= 0 && total-e.Size >= tc.RetentionBytes
		if !expired && !oversize {
			break
		}
		newStart = e.LastOffset + 1
		total -= e.Size
	}
	if newStart <= logStart {
		return nil
	}
	return p.DeleteRecords(ctx, newStart)
}

// DeleteRecords makes offset the new log start offset (Kafka's DeleteRecords;
// -1 means the high watermark, or the last stable offset while a
// transaction is open) and returns once that is committed; the data
// below it is then unreadable, and its objects are deleted by the sweeper.
// An offset past the last stable offset is ErrOffsetOutOfRange: an open
// transaction's records are kept until it ends.
func (p *Partition) DeleteRecords(ctx context.Context, offset int64) error {
	p.mu.Lock()
	if p.err != nil {
		p.mu.Unlock()
		return ErrNotLeader
	}
	if offset == -1 {
		// Kafka's "the high watermark": here the last stable offset,
		// the furthest an open transaction allows.
		offset = p.lsoLocked()
	}
	if offset < 0 || offset > p.lsoLocked() {
		p.mu.Unlock()
		return ErrOffsetOutOfRange
	}
	if offset <= p.logStart {
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	if err := p.t.meta.SetLogStartOffset(ctx, p.lead, offset); err != nil {
		if errors.Is(err, metadata.ErrFenced) {
			p.close(ErrNotLeader, false)
			return ErrNotLeader
		}
		return fmt.Errorf("%w: set log start: %w", ErrStorage, err)
	}
	p.mu.Lock()
	if offset > p.logStart {
		p.logStart = offset
	}
	p.dropAbortedBelowLocked(p.logStart)
	p.mu.Unlock()
	if err := p.t.meta.DeleteAbortedBelow(ctx, p.lead, offset); err != nil {
		p.t.logger.Warn("delete aborted transactions below log start", "topic", p.tp.Topic, "partition", p.tp.Partition, "err", err)
	}
	if err := p.t.meta.DeleteIndexBelow(ctx, p.lead, offset); err != nil {
		// The log start already moved; the next retention pass deletes the
		// entries.
		p.t.logger.Warn("delete index entries below log start", "topic", p.tp.Topic, "partition", p.tp.Partition, "err", err)
	}
	return nil
}
