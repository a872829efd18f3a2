package tier

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/segment"
	"github.com/strata-io/strata/segment/kbatch"
)

// Topic config defaults, as Kafka's.
const (
	defaultSegmentBytes   = 64 << 20
	defaultSegmentMs      = 10 * time.Minute // Kafka's is 7 days; ours only bounds index growth
	defaultRetentionMs    = 7 * 24 * time.Hour
	defaultRetentionBytes = -1
	// rollBlockBytes is the target size of a block in a rolled segment.
	rollBlockBytes = 1 << 20
	// rollChunkBytes is the largest target size of one index entry's run in
	// a segment object: the unit of a cold read and of retention (smaller
	// when segment.bytes is).
	rollChunkBytes = 4 << 20
	// maxRollChunks bounds one roll's index replacement to one transaction.
	maxRollChunks = 60
)

// topicConfig is what tier honours of a topic's configs.
type topicConfig struct {
	segmentBytes   int64
	segmentMs      time.Duration
	retentionMs    time.Duration // <0: keep forever
	retentionBytes int64         // <0: no size limit
}

func parseTopicConfig(c map[string]string) topicConfig {
	tc := topicConfig{
		segmentBytes:   defaultSegmentBytes,
		segmentMs:      defaultSegmentMs,
		retentionMs:    defaultRetentionMs,
		retentionBytes: defaultRetentionBytes,
	}
	num := func(k string) (int64, bool) {
		v, ok := c[k]
		if !ok {
			return 0, false
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		return n, err == nil
	}
	if n, ok := num("segment.bytes"); ok && n > 0 {
		tc.segmentBytes = n
	}
	if n, ok := num("segment.ms"); ok && n > 0 {
		tc.segmentMs = time.Duration(n) * time.Millisecond
	}
	if n, ok := num("retention.ms"); ok {
		if n < 0 {
			tc.retentionMs = -1
		} else {
			tc.retentionMs = time.Duration(n) * time.Millisecond
		}
	}
	if n, ok := num("retention.bytes"); ok {
		tc.retentionBytes = n
	}
	return tc
}

// isFlushObject reports whether key names a flush object.
func isFlushObject(key string) bool { return strings.HasPrefix(key, "flush/") }

// flushObjectTime is the creation time encoded in a flush object's key.
func flushObjectTime(key string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(key, "flush/")
	if !ok || len(rest) < 13 {
		return time.Time{}, false
	}
	ms, err := strconv.ParseInt(rest[:13], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}

// rollCandidate returns the flush-object entries to roll into one segment
// object now, or nil: the oldest unrolled entries once they add up to
// segment.bytes or the oldest is older than segment.ms.
func rollCandidate(entries []metadata.IndexEntry, tc topicConfig, now time.Time) []metadata.IndexEntry {
	i := 0
	for i < len(entries) && !isFlushObject(entries[i].Object) {
		i++
	}
	if i == len(entries) {
		return nil
	}
	limit := tc.segmentBytes
	if max := int64(maxRollChunks * rollChunkBytes); limit > max {
		limit = max
	}
	var size int64
	j := i
	for j < len(entries) && isFlushObject(entries[j].Object) && size < limit {
		size += entries[j].Size
		j++
	}
	if size >= limit {
		return entries[i:j]
	}
	if t, ok := flushObjectTime(entries[i].Object); ok && now.Sub(t) >= tc.segmentMs {
		return entries[i:j]
	}
	return nil
}

// roll rewrites the oldest unrolled data of p into one per-partition
// segment object (larger zstd blocks, with its own block and time index),
// then swaps the index entries in one fenced transaction. The flush objects
// it replaces are deleted later by the sweeper, once no entry points into
// them and the grace period for in-flight readers has passed.
func (p *Partition) roll(ctx context.Context, tc topicConfig, now time.Time) (bool, error) {
	v, err := p.view()
	if err != nil {
		return false, err
	}
	defer v.release()
	cand := rollCandidate(p.t.meta.IndexEntries(p.tp, v.logStart), tc, now)
	if len(cand) == 0 {
		return false, nil
	}
	from, to := cand[0].BaseOffset, cand[len(cand)-1].LastOffset
	// An index entry is the unit retention deletes, so like a Kafka segment
	// it holds about segment.bytes; but one roll must fit one transaction.
	var inSize int64
	for _, e := range cand {
		inSize += e.Size
	}
	chunk := max(min(int64(rollChunkBytes), tc.segmentBytes), inSize/(maxRollChunks-4), 1024)
	blockTarget := int(min(int64(rollBlockBytes), chunk))

	var blocks [][]byte
	var buf []byte
	var meta segment.BlockMeta
	seal := func() {
		if len(buf) > 0 {
			blocks = append(blocks, segment.AppendBlock(nil, meta, buf))
			buf = buf[:0]
		}
	}
	for cur := from; cur <= to; {
		sp, from, ok, err := v.next(ctx, cur)
		if err != nil {
			return false, err
		}
		if !ok || from != cur || sp.base > cur {
			return false, fmt.Errorf("%w: roll %s/%d: no data at offset %d", ErrStorage, p.tp.Topic, p.tp.Partition, cur)
		}
		batches, err := sp.load(ctx)
		if err != nil {
			return false, err
		}
		err = kbatch.Iterate(batches, func(h kbatch.Header, b []byte) error {
			if h.LastOffset() < cur || h.BaseOffset > to {
				return nil
			}
			if len(buf) == 0 {
				meta = segment.BlockMeta{BaseOffset: h.BaseOffset, MaxTimestamp: h.MaxTimestamp}
			}
			meta.LastOffset = h.LastOffset()
			meta.MaxTimestamp = max(meta.MaxTimestamp, h.MaxTimestamp)
			meta.BatchCount++
			buf = append(buf, b...)
			if len(buf) >= blockTarget {
				seal()
			}
			return nil
		})
		if err != nil {
			return false, fmt.Errorf("%w: roll: %w", ErrStorage, err)
		}
		cur = sp.last + 1
	}
	seal()

	obj, err := segment.Encode(from, blocks)
	if err != nil {
		return false, fmt.Errorf("%w: encode segment: %w", ErrStorage, err)
	}
	r, err := segment.OpenReader(bytes.NewReader(obj), int64(len(obj)))
	if err != nil {
		return false, fmt.Errorf("%w: reopen segment: %w", ErrStorage, err)
	}
	key := segmentObjectKey(p.topicID, p.tp.Partition, from, to)

	// One index entry per ~rollChunkBytes of consecutive blocks.
	var entries []metadata.IndexEntry
	for _, ref := range r.Blocks() {
		n := len(entries)
		if n > 0 && entries[n-1].Size+ref.Size <= chunk {
			e := &entries[n-1]
			e.LastOffset = ref.LastOffset
			e.MaxTimestamp = max(e.MaxTimestamp, ref.MaxTimestamp)
			e.Size += ref.Size
			e.Records = e.LastOffset - e.BaseOffset + 1
			continue
		}
		entries = append(entries, metadata.IndexEntry{
			BaseOffset: ref.BaseOffset, LastOffset: ref.LastOffset, MaxTimestamp: ref.MaxTimestamp,
			Object: key, Position: ref.Pos, Size: ref.Size, Records: ref.LastOffset - ref.BaseOffset + 1,
		})
	}
	if len(entries) > maxRollChunks {
		return false, fmt.Errorf("%w: roll %s/%d: %d index entries do not fit one transaction", ErrStorage, p.tp.Topic, p.tp.Partition, len(entries))
	}
	if len(entries) == 0 || entries[0].BaseOffset != from || entries[len(entries)-1].LastOffset != to {
		return false, fmt.Errorf("%w: roll %s/%d: rewritten data does not cover [%d, %d]", ErrStorage, p.tp.Topic, p.tp.Partition, from, to)
	}
	if err := p.t.bucket.Put(ctx, key, obj); err != nil {
		return false, fmt.Errorf("%w: put segment: %w", ErrStorage, err)
	}
	if err := p.t.meta.ReplaceIndex(ctx, p.lead, from, to, entries); err != nil {
		// The segment object is now an orphan; the sweeper deletes it.
		if errors.Is(err, metadata.ErrFenced) {
			p.close(ErrNotLeader, false)
			return false, ErrNotLeader
		}
		return false, fmt.Errorf("%w: swap index: %w", ErrStorage, err)
	}
	p.t.metrics.rolls.Inc()
	p.t.metrics.rolledBytes.Add(float64(len(obj)))
	p.t.logger.Debug("rolled segment", "topic", p.tp.Topic, "partition", p.tp.Partition,
		"from", from, "to", to, "replaced_entries", len(cand), "entries", len(entries), "bytes", len(obj), "key", key)
	return true, nil
}

// segmentObjectKey names a rolled segment object: by partition and offset
// range, with a random suffix so two leaders rolling the same range (one of
// them fenced) never overwrite each other's object.
func segmentObjectKey(id metadata.TopicID, partition int32, from, to int64) string {
	var r [4]byte
	rand.Read(r[:])
	return fmt.Sprintf("segments/%s/%d/%020d-%020d-%s.seg", hex.EncodeToString(id[:]), partition, from, to, hex.EncodeToString(r[:]))
}

// applyRetention advances the log start offset past whole index entries
// that retention.ms or retention.bytes no longer keep, then deletes those
// entries. Like Kafka, it deletes whole units (here: index entries), never
// part of one.
func (p *Partition) applyRetention(ctx context.Context, tc topicConfig, now time.Time) error {
	if tc.retentionMs < 0 && tc.retentionBytes < 0 {
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
		expired := tc.retentionMs >= 0 && e.MaxTimestamp < now.Add(-tc.retentionMs).UnixMilli()
		// As Kafka does: drop a unit only if what remains still holds at
		// least retention.bytes.
		oversize := tc.retentionBytes >= 0 && total-e.Size >= tc.retentionBytes
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
// -1 means the high watermark) and returns once that is committed; the data
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
		offset = p.hw
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
