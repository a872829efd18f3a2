package kbatch

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// RecordHeader is one key/value header of a record. Kafka forbids a null
// header key but allows a null value, which decodes as nil.
type RecordHeader struct {
	Key   string
	Value []byte
}

// Record is one decoded record with its offset and timestamp made absolute.
type Record struct {
	Offset    int64  // BaseOffset + the record's offset delta
	Timestamp int64  // absolute (LogAppendTime batches use MaxTimestamp for every record, as Kafka does)
	Key       []byte // nil when the varint length is -1
	Value     []byte // nil when the varint length is -1
	Headers   []RecordHeader
}

// minRecordSize is the smallest encoded record: a length varint and six
// one-byte fields (attributes, timestamp delta, offset delta, key length,
// value length, header count). It bounds how many records a buffer can hold,
// so a forged record count cannot drive an allocation.
const minRecordSize = 7

// Records decodes every record of one batch, decompressing as needed. batch
// must be exactly one whole batch, as Iterate yields; its length, magic,
// codec and CRC are checked first. Decompressed data is limited to
// MaxUncompressed bytes (ErrTooLarge beyond), and malformed records, a
// record count that disagrees with the records present, or bytes after the
// last record are ErrCorrupt.
//
// Keys, values and header values alias batch when it is uncompressed (and a
// fresh buffer otherwise): copy them before reusing batch. Control batches
// decode like any other; their records hold the transaction marker.
func Records(batch []byte) ([]Record, error) {
	h, status, err := nextBatch(batch, 0)
	if status != frameOK {
		return nil, err
	}
	if h.Size() != len(batch) {
		return nil, errAt(ErrCorrupt, h.Size(), fmt.Sprintf("%d bytes after the batch", len(batch)-h.Size()))
	}
	if h.NumRecords < 0 {
		return nil, errAt(ErrCorrupt, 0, fmt.Sprintf("negative record count %d", h.NumRecords))
	}
	data := batch[HeaderSize:]
	if c := h.Codec(); c != None {
		data, err = decompress(c, data, MaxUncompressed)
		if errors.Is(err, ErrTooLarge) {
			return nil, errAt(ErrTooLarge, 0, fmt.Sprintf("%s data exceeds %d bytes", c, MaxUncompressed))
		}
		if err != nil {
			return nil, errAt(ErrCorrupt, 0, fmt.Sprintf("%s: %v", c, err))
		}
	}
	if int64(h.NumRecords)*minRecordSize > int64(len(data)) {
		return nil, errAt(ErrCorrupt, 0, fmt.Sprintf("record count %d cannot fit in %d bytes", h.NumRecords, len(data)))
	}
	if h.NumRecords == 0 {
		return nil, nil
	}
	out := make([]Record, h.NumRecords)
	for i := range out {
		n, err := decodeRecord(data, h, &out[i])
		if err != nil {
			return nil, errAt(ErrCorrupt, 0, fmt.Sprintf("record %d: %v", i, err))
		}
		data = data[n:]
	}
	if len(data) != 0 {
		return nil, errAt(ErrCorrupt, 0, fmt.Sprintf("%d bytes after record %d", len(data), h.NumRecords-1))
	}
	return out, nil
}

// reader consumes Kafka's primitive encodings from a byte slice. The first
// failure sticks, so decodeRecord checks once per record instead of after
// every field.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(msg string) {
	if r.err == nil {
		r.err = errors.New(msg)
	}
	r.b = nil
}

func (r *reader) int8() int8 {
	if len(r.b) < 1 {
		r.fail("truncated")
		return 0
	}
	v := int8(r.b[0])
	r.b = r.b[1:]
	return v
}

// varlong reads a zigzag varint of up to ten bytes.
func (r *reader) varlong() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// varint reads a zigzag varint that must fit an int32, as Kafka's
// ByteUtils.readVarint insists.
func (r *reader) varint() int32 {
	v := r.varlong()
	if int64(int32(v)) != v {
		r.fail("varint overflows int32")
		return 0
	}
	return int32(v)
}

// bytes reads a varint length and that many bytes; -1 means null. The
// result aliases the input with its capacity clipped, so appending to it
// cannot overwrite the next field.
func (r *reader) bytes() []byte {
	n := r.varint()
	switch {
	case r.err != nil:
		return nil
	case n == -1:
		return nil
	case n < -1 || int(n) > len(r.b):
		r.fail(fmt.Sprintf("length %d with %d bytes left", n, len(r.b)))
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// decodeRecord decodes the record at the start of b into rec and returns
// how many bytes it took.
func decodeRecord(b []byte, h Header, rec *Record) (int, error) {
	r := reader{b: b}
	length := r.varint()
	if r.err != nil {
		return 0, r.err
	}
	if length < 0 || int(length) > len(r.b) {
		return 0, fmt.Errorf("record length %d with %d bytes left", length, len(r.b))
	}
	used := len(b) - len(r.b) + int(length)
	r.b = r.b[:length]

	r.int8() // record attributes: unused by Kafka so far
	tsDelta := r.varlong()
	offDelta := r.varint()
	rec.Key = r.bytes()
	rec.Value = r.bytes()
	count := r.varint()
	if r.err != nil {
		return 0, r.err
	}
	// Each header takes at least two bytes (two lengths), which bounds the
	// allocation by the record's real size.
	if count < 0 || int(count) > len(r.b)/2 {
		return 0, fmt.Errorf("header count %d with %d bytes left", count, len(r.b))
	}
	if count > 0 {
		rec.Headers = make([]RecordHeader, count)
		for i := range rec.Headers {
			key := r.bytes()
			if r.err == nil && key == nil {
				return 0, fmt.Errorf("header %d has a null key", i)
			}
			rec.Headers[i] = RecordHeader{Key: string(key), Value: r.bytes()}
		}
	}
	if r.err != nil {
		return 0, r.err
	}
	if len(r.b) != 0 {
		return 0, fmt.Errorf("%d bytes left inside record of length %d", len(r.b), length)
	}
	rec.Offset = h.BaseOffset + int64(offDelta)
	if h.LogAppendTime() {
		rec.Timestamp = h.MaxTimestamp
	} else {
		rec.Timestamp = h.BaseTimestamp + tsDelta
	}
	return used, nil
}
