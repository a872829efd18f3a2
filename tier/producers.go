package tier

import (
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
	// producerIdleExpiry forgets producers that have not written for this
	// long (Kafka's producer.id.expiration.ms default).
	producerIdleExpiry = 24 * time.Hour
	// maxProducers bounds the state kept per partition; the least recently
	// active producers go first.
	maxProducers = 10000
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
		st = &producerState{Epoch: h.ProducerEpoch}
		p.producers[h.ProducerID] = st
	}
	st.Batches = append(st.Batches, producerBatch{FirstSeq: h.BaseSequence, LastSeq: lastSeq(h), Base: base, Last: last, g: g})
	if len(st.Batches) > producerWindow {
		st.Batches = append(st.Batches[:0], st.Batches[len(st.Batches)-producerWindow:]...)
	}
	st.LastSeen = now.UnixMilli()
}

// producersSnapshotLocked encodes the producer state for the flush commit,
// expiring idle producers first; nil when there are none. The flusher calls
// it as it takes every pending block, so the snapshot describes exactly the
// log the commit makes durable.
func (p *Partition) producersSnapshotLocked(now time.Time) []byte {
	if len(p.producers) == 0 {
		return nil
	}
	cutoff := now.Add(-producerIdleExpiry).UnixMilli()
	for id, st := range p.producers {
		if st.LastSeen < cutoff {
			delete(p.producers, id)
		}
	}
	if len(p.producers) > maxProducers {
		ids := make([]int64, 0, len(p.producers))
		for id := range p.producers {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return p.producers[ids[i]].LastSeen < p.producers[ids[j]].LastSeen })
		for _, id := range ids[:len(ids)-maxProducers] {
			delete(p.producers, id)
		}
	}
	data, err := json.Marshal(p.producers)
	if err != nil {
		return nil // cannot happen: plain structs
	}
	return data
}

// loadProducers restores producer state committed by an earlier leader.
func loadProducers(data []byte) (map[int64]*producerState, error) {
	if len(data) == 0 {
		return nil, nil
	}
	var snap map[int64]producerState
	if err := json.Unmarshal(data, &snap); err != nil {
		return nil, fmt.Errorf("tier: decode producer state: %w", err)
	}
	out := make(map[int64]*producerState, len(snap))
	for id, st := range snap {
		out[id] = &st
	}
	return out, nil
}
