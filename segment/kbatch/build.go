package kbatch

import (
	"encoding/binary"
	"fmt"
	"math"
)

// NoProducer is the producer id of a batch written without idempotence.
// BuildOptions treats a ProducerID of 0 the same way; see there.
const NoProducer int64 = -1

// BuildOptions sets the header fields Build does not derive from the
// records.
type BuildOptions struct {
	// Codec compresses the records; None leaves them as they are.
	Codec Codec

	// ProducerID is the idempotent producer id. Both NoProducer and the
	// zero value 0 mean none, so that BuildOptions{} builds the plain batch
	// tests want most; a batch with producer id 0 cannot be built. With no
	// producer, the epoch and base sequence are written as -1 whatever
	// ProducerEpoch and BaseSequence say. Otherwise all three are written
	// as given, even when they break Validate's rules, so tests can build
	// bad batches.
	ProducerID    int64
	ProducerEpoch int16
	BaseSequence  int32

	// Transactional and Control set the attribute bits of a transactional
	// batch and of a control batch (transaction markers).
	Transactional, Control bool

	// BaseTimestamp is the batch's base timestamp; record timestamp deltas
	// are taken from it. Zero means the first record's timestamp, as Kafka
	// producers write.
	BaseTimestamp int64
}

// Build encodes records into one valid RecordBatch v2 with base offset 0,
// partition leader epoch -1 (as clients send), offset deltas 0, 1, 2, ... (the
// records' Offset fields are ignored) and MaxTimestamp the largest record
// timestamp. Keys and values that are nil are written as null. Snappy is
// written as a raw block, as franz-go and librdkafka do. It is for tests,
// benchmarks and tools; the broker never builds batches from records.
func Build(records []Record, opts BuildOptions) ([]byte, error) {
	if len(records) == 0 {
		return nil, errAt(ErrInvalidRecord, 0, "a batch needs at least one record")
	}
	if len(records) > math.MaxInt32 {
		return nil, errAt(ErrInvalidRecord, 0, fmt.Sprintf("%d records do not fit one batch", len(records)))
	}
	if opts.Codec < None || opts.Codec > Zstd {
		return nil, errAt(ErrUnsupportedCodec, 0, fmt.Sprintf("compression codec %d", opts.Codec))
	}
	baseTS := opts.BaseTimestamp
	if baseTS == 0 {
		baseTS = records[0].Timestamp
	}
	maxTS := records[0].Timestamp
	var raw []byte
	for i := range records {
		maxTS = max(maxTS, records[i].Timestamp)
		var err error
		if raw, err = appendRecord(raw, &records[i], int32(i), baseTS); err != nil {
			return nil, errAt(ErrInvalidRecord, 0, fmt.Sprintf("record %d: %v", i, err))
		}
	}
	payload, err := compress(opts.Codec, raw)
	if err != nil {
		return nil, fmt.Errorf("kbatch: compress %s: %w", opts.Codec, err)
	}
	if len(payload) > math.MaxInt32-minBatchLength {
		return nil, errAt(ErrInvalidRecord, 0, fmt.Sprintf("%d bytes of records do not fit one batch", len(payload)))
	}

	pid, epoch, seq := opts.ProducerID, opts.ProducerEpoch, opts.BaseSequence
	if pid == 0 || pid == NoProducer {
		pid, epoch, seq = NoProducer, -1, -1
	}
	be := binary.BigEndian
	b := make([]byte, HeaderSize, HeaderSize+len(payload))
	be.PutUint64(b[offBaseOffset:], 0)
	be.PutUint32(b[offBatchLength:], uint32(minBatchLength+len(payload)))
	be.PutUint32(b[offLeaderEpoch:], math.MaxUint32) // -1
	b[offMagic] = 2
	attrs := uint16(opts.Codec)
	if opts.Transactional {
		attrs |= attrTransactional
	}
	if opts.Control {
		attrs |= attrControl
	}
	be.PutUint16(b[offAttributes:], attrs)
	be.PutUint32(b[offLastOffsetDelta:], uint32(len(records)-1))
	be.PutUint64(b[offBaseTimestamp:], uint64(baseTS))
	be.PutUint64(b[offMaxTimestamp:], uint64(maxTS))
	be.PutUint64(b[offProducerID:], uint64(pid))
	be.PutUint16(b[offProducerEpoch:], uint16(epoch))
	be.PutUint32(b[offBaseSequence:], uint32(seq))
	be.PutUint32(b[offNumRecords:], uint32(len(records)))
	b = append(b, payload...)
	be.PutUint32(b[offCRC:], checksum(b))
	return b, nil
}

// appendRecord appends the wire form of rec to dst: a length varint, then
// attributes, timestamp delta, offset delta, key, value and headers.
func appendRecord(dst []byte, rec *Record, offsetDelta int32, baseTS int64) ([]byte, error) {
	for _, f := range [][]byte{rec.Key, rec.Value} {
		if len(f) > math.MaxInt32 {
			return nil, fmt.Errorf("field of %d bytes", len(f))
		}
	}
	body := make([]byte, 0, 16+len(rec.Key)+len(rec.Value))
	body = append(body, 0) // attributes
	body = binary.AppendVarint(body, rec.Timestamp-baseTS)
	body = binary.AppendVarint(body, int64(offsetDelta))
	body = appendNullableBytes(body, rec.Key)
	body = appendNullableBytes(body, rec.Value)
	if len(rec.Headers) > math.MaxInt32 {
		return nil, fmt.Errorf("%d headers", len(rec.Headers))
	}
	body = binary.AppendVarint(body, int64(len(rec.Headers)))
	for _, h := range rec.Headers {
		if len(h.Key) > math.MaxInt32 || len(h.Value) > math.MaxInt32 {
			return nil, fmt.Errorf("header %q too large", h.Key)
		}
		body = binary.AppendVarint(body, int64(len(h.Key)))
		body = append(body, h.Key...)
		body = appendNullableBytes(body, h.Value)
	}
	if len(body) > math.MaxInt32 {
		return nil, fmt.Errorf("record of %d bytes", len(body))
	}
	dst = binary.AppendVarint(dst, int64(len(body)))
	return append(dst, body...), nil
}

// appendNullableBytes appends a varint length and b, or length -1 for nil.
func appendNullableBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}
