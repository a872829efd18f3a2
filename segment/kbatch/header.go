package kbatch

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

// HeaderSize is the size of the fixed RecordBatch v2 header; records (or
// their compressed form) follow it.
const HeaderSize = 61

// Byte offsets of the header fields. The CRC covers everything from
// offAttributes to the end of the batch, which is why the base offset and
// partition leader epoch can be rewritten without touching it.
const (
	offBaseOffset      = 0
	offBatchLength     = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offNumRecords      = 57

	// logOverhead is the part of a batch that batchLength does not count:
	// the base offset and the length itself.
	logOverhead = 12
	// minBatchLength is the smallest legal batchLength: a header and no
	// records.
	minBatchLength = HeaderSize - logOverhead
)

// Attribute bits of a v2 batch.
const (
	attrCodecMask     = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

// Header is the fixed 61-byte header of a RecordBatch v2, decoded.
type Header struct {
	BaseOffset           int64  // offset of the first record; the broker assigns it
	BatchLength          int32  // bytes after this field: the batch size minus 12
	PartitionLeaderEpoch int32  // leader epoch the broker stamps on append
	Magic                int8   // format version; 2 for every batch this package accepts
	CRC                  uint32 // CRC-32C of everything from Attributes to the end
	Attributes           int16  // codec, timestamp type, transactional and control bits
	LastOffsetDelta      int32  // offset of the last record relative to BaseOffset
	BaseTimestamp        int64  // timestamp of the first record, milliseconds
	MaxTimestamp         int64  // largest record timestamp, or the append time
	ProducerID           int64  // idempotent producer id, -1 for none
	ProducerEpoch        int16  // producer epoch, -1 for none
	BaseSequence         int32  // sequence of the first record, -1 for none
	NumRecords           int32  // number of records in the batch
}

// Codec reports the compression codec of the batch's records.
func (h Header) Codec() Codec { return Codec(h.Attributes & attrCodecMask) }

// IsTransactional reports whether the batch belongs to a transaction.
func (h Header) IsTransactional() bool { return h.Attributes&attrTransactional != 0 }

// IsControl reports whether the batch holds control records (transaction
// markers), which only brokers may write.
func (h Header) IsControl() bool { return h.Attributes&attrControl != 0 }

// LogAppendTime reports whether record timestamps were replaced by the
// broker's append time, held in MaxTimestamp.
func (h Header) LogAppendTime() bool { return h.Attributes&attrLogAppendTime != 0 }

// LastOffset returns the offset of the batch's last record.
func (h Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Size returns the total size of the batch in bytes, header included.
func (h Header) Size() int { return int(h.BatchLength) + logOverhead }

// Codec is a Kafka compression codec, as held in the low three attribute
// bits of a batch.
type Codec int8

// The codecs Kafka defines. Values 5 to 7 are unassigned.
const (
	None   Codec = 0 // uncompressed
	Gzip   Codec = 1 // gzip (RFC 1952), possibly several members
	Snappy Codec = 2 // snappy, raw block or xerial-framed
	LZ4    Codec = 3 // LZ4 frame format
	Zstd   Codec = 4 // zstandard
)

// String returns the name Kafka uses for the codec (compression.type).
func (c Codec) String() string {
	switch c {
	case None:
		return "none"
	case Gzip:
		return "gzip"
	case Snappy:
		return "snappy"
	case LZ4:
		return "lz4"
	case Zstd:
		return "zstd"
	}
	return "codec(" + strconv.Itoa(int(c)) + ")"
}

// ParseHeader decodes the 61-byte header at the start of b. It checks only
// that b is long enough: no CRC, magic or length check, which is the job of
// Validate and Iterate.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, errAt(ErrCorrupt, 0, fmt.Sprintf("%d bytes cannot hold a %d-byte batch header", len(b), HeaderSize))
	}
	return parseHeader(b), nil
}

// parseHeader decodes a header from b, which must hold HeaderSize bytes.
func parseHeader(b []byte) Header {
	_ = b[HeaderSize-1] // one bounds check for all the reads below
	be := binary.BigEndian
	return Header{
		BaseOffset:           int64(be.Uint64(b[offBaseOffset:])),
		BatchLength:          int32(be.Uint32(b[offBatchLength:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[offLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  be.Uint32(b[offCRC:]),
		Attributes:           int16(be.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(be.Uint32(b[offLastOffsetDelta:])),
		BaseTimestamp:        int64(be.Uint64(b[offBaseTimestamp:])),
		MaxTimestamp:         int64(be.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(be.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(be.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(be.Uint32(b[offBaseSequence:])),
		NumRecords:           int32(be.Uint32(b[offNumRecords:])),
	}
}
