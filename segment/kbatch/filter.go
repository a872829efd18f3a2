package kbatch

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Filter rewrites one batch keeping only the records keep returns true
// for, as Kafka's log cleaner does: the base offset, last offset delta,
// producer id, epoch, base sequence, partition leader epoch, attributes
// (codec, transactional, control) and base timestamp stay; each kept record
// keeps its offset and timestamp, so offsets become sparse but never move.
// MaxTimestamp is the kept records' largest (the batch's own when none is
// kept). The records are compressed again with the batch's codec.
//
// When every record is dropped, Filter returns nil unless keepEmpty: then it
// returns the batch with no records (Kafka keeps such an empty batch where
// a producer's last batch would otherwise vanish; Strata keeps one where a
// compacted range would otherwise hold no batch at all).
func Filter(batch []byte, keep func(*Record) bool, keepEmpty bool) ([]byte, error) {
	if len(batch) < HeaderSize {
		return nil, errAt(ErrCorrupt, 0, "batch shorter than its header")
	}
	h := parseHeader(batch)
	recs, err := Records(batch)
	if err != nil {
		return nil, err
	}
	kept := recs[:0]
	for i := range recs {
		if keep(&recs[i]) {
			kept = append(kept, recs[i])
		}
	}
	if len(kept) == len(recs) {
		return batch, nil
	}
	if len(kept) == 0 && !keepEmpty {
		return nil, nil
	}
	baseTS := h.BaseTimestamp
	maxTS := h.MaxTimestamp
	if len(kept) > 0 && !h.LogAppendTime() {
		maxTS = kept[0].Timestamp
	}
	var raw []byte
	for i := range kept {
		if !h.LogAppendTime() {
			maxTS = max(maxTS, kept[i].Timestamp)
		}
		delta := kept[i].Offset - h.BaseOffset
		if delta < 0 || delta > math.MaxInt32 {
			return nil, errAt(ErrCorrupt, 0, fmt.Sprintf("record offset %d outside batch at %d", kept[i].Offset, h.BaseOffset))
		}
		if raw, err = appendRecord(raw, &kept[i], int32(delta), baseTS); err != nil {
			return nil, errAt(ErrInvalidRecord, 0, err.Error())
		}
	}
	payload, err := compress(h.Codec(), raw)
	if err != nil {
		return nil, fmt.Errorf("kbatch: compress %s: %w", h.Codec(), err)
	}
	be := binary.BigEndian
	out := make([]byte, HeaderSize, HeaderSize+len(payload))
	copy(out, batch[:HeaderSize])
	be.PutUint32(out[offBatchLength:], uint32(minBatchLength+len(payload)))
	be.PutUint64(out[offMaxTimestamp:], uint64(maxTS))
	be.PutUint32(out[offNumRecords:], uint32(len(kept)))
	out = append(out, payload...)
	be.PutUint32(out[offCRC:], checksum(out))
	return out, nil
}
