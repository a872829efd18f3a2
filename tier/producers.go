package tier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/strata-io/strata/segment/kbatch"
)

// Idempotence errors, mapped by ingest to OUT_OF_ORDER_SEQUENCE_NUMBER and
// INVALID_PRODUCER_EPOCH.
var (
	ErrOutOfOrderSequence   = errors.New("tier: out of order sequence number")
	ErrInvalidProducerEpoch = errors.New("tier: invalid producer epoch")
)

const (
	// producerWindow is how many recent batches per producer are remembered
	// for duplicate detection: Kafka clients keep at most 5 requests in flight.
	producerWindow = 5
	// maxProducers bounds the state kept per partition; the least recently
	// active producers go first.
	maxProducers = 10000
	// expireBatch bounds the producer keys one expiry round deletes from
	// etcd (in transactions of at most MaxTxnOps keys), so that a round
	// delays the flusher by a few transactions at most.
	expireBatch = 512
)

// producerBatch is one appended batch of an idempotent producer.
type producerBatch struct {
	FirstSeq int32       `json:"f"`
	LastSeq  int32       `json:"l"`
	Base     int64       `json:"b"`
	Last     int64       `json:"o"`
	g        *flushGroup // nil once known durable (e.g. loaded from etcd)
}

// producerState is what a partition remembers of one producer id.
type producerState struct {
	Epoch    int16           `json:"e"`
	Batches  []producerBatch `json:"b"` // oldest first, at most producerWindow
	LastSeen int64           `json:"t"` // unix ms of the last append
	// Txn is the first offset of the producer's open transaction in the
	// partition (as of the commit that wrote this state), nil when none.
	Txn *int64 `json:"x,omitempty"`
	// MarkerSeq is the transaction number (metadata.TxnState.Seq) of the
	// last marker taken for this producer in its current epoch.
	MarkerSeq int32 `json:"m,omitempty"`

	// In memory only, for the last marker taken (AppendMarker): its offset
	// (-1: none since the state was loaded), the flush group it is in, and
	// the epoch and number before it, which a commit of a group that ends
	// before the marker records instead (the marker is not durable with
	// that commit).
	markerAt       int64
	markerGroup    *flushGroup
	prevEpoch      int16
	prevMarkerSeq  int32
	markerVersions uint64 // markers taken for this producer, for AppendTxn's verification
}

// markerAsOf is the epoch and marker number a commit ending at cut records:
// a marker at or after cut is not part of it.
func (st *producerState) markerAsOf(cut int64) (int16, int32) {
	if st.markerGroup != nil && st.markerAt >= cut {
		return st.prevEpoch, st.prevMarkerSeq
	}
	return st.Epoch, st.MarkerSeq
}

// nextSeq is the sequence after last, wrapping at int32 max as Kafka does.
func nextSeq(last int32) int32 {
	if last == math.MaxInt32 {
		return 0
	}
	return last + 1
}

// lastSeq is the sequence of a batch's last record.
func lastSeq(h kbatch.Header) int32 {
	s := int64(h.BaseSequence) + int64(h.LastOffsetDelta)
	if s > math.MaxInt32 {
		s -= math.MaxInt32 + 1
	}
	return int32(s)
}

// checkSequenceLocked applies Kafka's idempotence rules to a batch of an
// idempotent producer. A duplicate of a remembered batch returns that batch;
// an acceptable new batch returns nil, nil.
func (p *Partition) checkSequenceLocked(h kbatch.Header) (*producerBatch, error) {
	st := p.producers[h.ProducerID]
	if st == nil {
		// An unknown producer id is accepted at any sequence: its state may
		// have expired, or it wrote only to other partitions.
		return nil, nil
	}
	switch {
	case h.ProducerEpoch < st.Epoch:
		return nil, fmt.Errorf("%w: producer %d epoch %d is older than %d", ErrInvalidProducerEpoch, h.ProducerID, h.ProducerEpoch, st.Epoch)
	case h.ProducerEpoch > st.Epoch:
		if h.BaseSequence != 0 {
			return nil, fmt.Errorf("%w: producer %d new epoch %d must start at sequence 0, got %d", ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, h.BaseSequence)
		}
		return nil, nil
	}
	ls := lastSeq(h)
	for i := range st.Batches {
		b := &st.Batches[i]
		if b.FirstSeq == h.BaseSequence && b.LastSeq == ls {
			return b, nil
		}
	}
	if n := len(st.Batches); n > 0 {
		if want := nextSeq(st.Batches[n-1].LastSeq); h.BaseSequence != want {
			return nil, fmt.Errorf("%w: producer %d expected sequence %d, got %d", ErrOutOfOrderSequence, h.ProducerID, want, h.BaseSequence)
		}
	}
	return nil, nil
}

// recordSequenceLocked remembers an appended batch of an idempotent producer.
func (p *Partition) recordSequenceLocked(h kbatch.Header, base, last int64, g *flushGroup, now time.Time) {
	if p.producers == nil {
		p.producers = make(map[int64]*producerState)
	}
	st := p.producers[h.ProducerID]
	if st == nil || h.ProducerEpoch != st.Epoch {
		var versions uint64
		if st != nil {
			versions = st.markerVersions
		}
		st = &producerState{Epoch: h.ProducerEpoch, markerVersions: versions}
		if p.producers[h.ProducerID] == nil {
			// Its key is written again by the flush of this batch: no
			// expiry may delete it now.
			delete(p.forget, h.ProducerID)
			if len(p.producers) >= maxProducers+maxProducers/8 {
				p.trimProducersLocked()
			}
		}
		p.producers[h.ProducerID] = st
	}
	st.Batches = append(st.Batches, producerBatch{FirstSeq: h.BaseSequence, LastSeq: lastSeq(h), Base: base, Last: last, g: g})
	if len(st.Batches) > producerWindow {
		st.Batches = append(st.Batches[:0], st.Batches[len(st.Batches)-producerWindow:]...)
	}
	st.LastSeen = now.UnixMilli()
}

// producerDeltaLocked encodes, for the flush commit of a group whose last
// offset is cut-1, the state of the producers that appended in that group
// (pids): a JSON object from producer id to state, nil when empty. Only
// batches below cut go in, so the state describes exactly the log the
// commit makes durable: a later group's batches wait for their own commit.
// Producers forgotten since (expired, or beyond maxProducers) are left out:
// their keys are being deleted.
func (p *Partition) producerDeltaLocked(pids []int64, cut int64) []byte {
	if len(pids) == 0 {
		return nil
	}
	out := make(map[int64]producerState, len(pids))
	for _, id := range pids {
		st := p.producers[id]
		if st == nil {
			continue
		}
		epoch, markerSeq := st.markerAsOf(cut)
		d := producerState{Epoch: epoch, LastSeen: st.LastSeen, MarkerSeq: markerSeq, Txn: p.txnAsOfLocked(id, cut), Batches: make([]producerBatch, 0, len(st.Batches))}
		for _, b := range st.Batches {
			if b.Last < cut {
				d.Batches = append(d.Batches, b)
			}
		}
		out[id] = d
	}
	if len(out) == 0 {
		return nil
	}
	data, err := json.Marshal(out)
	if err != nil {
		return nil // cannot happen: plain structs
	}
	return data
}

// trimProducersLocked forgets the least recently active producers beyond
// maxProducers; their keys are deleted by the next expiry round.
func (p *Partition) trimProducersLocked() {
	if len(p.producers) <= maxProducers {
		return
	}
	ids := make([]int64, 0, len(p.producers))
	for id := range p.producers {
		if p.txns[id] == nil { // an open transaction's state stays
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return p.producers[ids[i]].LastSeen < p.producers[ids[j]].LastSeen })
	for _, id := range ids[:min(len(ids), max(0, len(p.producers)-maxProducers))] {
		p.forgetLocked(id)
	}
}

// forgetLocked drops a producer from memory and queues its key for deletion.
func (p *Partition) forgetLocked(id int64) {
	delete(p.producers, id)
	if p.forget == nil {
		p.forget = make(map[int64]struct{})
	}
	p.forget[id] = struct{}{}
}

// expireProducers forgets the producers idle since before cutoff (unix ms)
// and those beyond maxProducers, and returns up to n producers whose keys
// are to be deleted from etcd.
func (p *Partition) expireProducers(cutoff int64, n int) []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return nil
	}
	for id, st := range p.producers {
		if st.LastSeen < cutoff && p.txns[id] == nil {
			p.forgetLocked(id)
		}
	}
	p.trimProducersLocked()
	ids := make([]int64, 0, min(n, len(p.forget)))
	for id := range p.forget {
		if len(ids) == n {
			break
		}
		ids = append(ids, id)
	}
	return ids
}

// forgotten records that the keys of ids are deleted. A producer that
// appended again since is not in p.forget any more (recordSequenceLocked).
func (p *Partition) forgotten(ids []int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		delete(p.forget, id)
	}
}

// expireProducers runs one expiry round over the open partitions: idle
// producers are forgotten and their keys deleted, at most expireBatch of
// them. It reports whether more remain. It runs on the flusher's goroutine,
// between flushes: a producer forgotten and then active again has its key
// written by a later flush, never deleted after it.
func (t *Tier) expireProducers(ctx context.Context, now time.Time) (more bool) {
	cutoff := now.Add(-t.cfg.ProducerIDExpiration).UnixMilli()
	budget := expireBatch
	for _, p := range t.snapshot() {
		if ctx.Err() != nil {
			return false
		}
		ids := p.expireProducers(cutoff, budget)
		if len(ids) == 0 {
			continue
		}
		if err := t.meta.DeleteProducers(ctx, p.lead, ids); err != nil {
			// Fenced: the next flush closes the partition. Otherwise the
			// next round tries again.
			t.logger.Warn("producer expiry: delete failed", "topic", p.tp.Topic, "partition", p.tp.Partition, "err", err)
			continue
		}
		p.forgotten(ids)
		t.logger.Debug("producers expired", "topic", p.tp.Topic, "partition", p.tp.Partition, "count", len(ids))
		if budget -= len(ids); budget <= 0 {
			return true
		}
	}
	return false
}

// loadProducers restores the producer state committed by earlier leaders:
// one JSON value per producer key. A value that does not decode is skipped
// (logged) and its key deleted by the next expiry round: the producer is
// then unknown, which Kafka's rules allow (as after an expiry).
func (p *Partition) loadProducers(states map[int64][]byte) {
	if len(states) == 0 {
		return
	}
	p.producers = make(map[int64]*producerState, len(states))
	for id, data := range states {
		st := new(producerState)
		if err := json.Unmarshal(data, st); err != nil || len(st.Batches) > producerWindow {
			p.t.logger.Warn("skipping unreadable producer state", "topic", p.tp.Topic, "partition", p.tp.Partition, "producer", id, "err", err)
			p.forgetLocked(id)
			continue
		}
		p.producers[id] = st
	}
}
