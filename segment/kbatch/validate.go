package kbatch

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// castagnoli is the CRC-32C table Kafka uses for v2 batches. hash/crc32
// switches to the SSE4.2/ARMv8 instruction for this polynomial, which keeps
// the CRC, the one per-byte cost of Validate, at memory speed.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checksum returns the CRC-32C a batch should carry: over everything from
// the attributes to the end. batch must be exactly one whole batch.
func checksum(batch []byte) uint32 {
	return crc32.Checksum(batch[offAttributes:], castagnoli)
}

// frameStatus says what nextBatch found at the start of its input.
type frameStatus int8

const (
	frameOK        frameStatus = iota // a whole batch; its header is valid
	frameTruncated                    // fewer bytes than the batch claims
	frameBad                          // malformed; err says how
)

// nextBatch checks the batch at the start of b, which lies at byte off of
// the caller's input (for error messages). It checks what every reader of a
// batch must trust before looking further: the length, the magic, the CRC
// and the codec. It does not apply the rules for client batches.
func nextBatch(b []byte, off int) (Header, frameStatus, error) {
	return nextBatchCRC(b, off, true)
}

func nextBatchCRC(b []byte, off int, checkCRC bool) (Header, frameStatus, error) {
	if len(b) < logOverhead {
		return Header{}, frameTruncated, errAt(ErrCorrupt, off, fmt.Sprintf("%d bytes left cannot hold a batch", len(b)))
	}
	length := int32(binary.BigEndian.Uint32(b[offBatchLength:]))
	if length < 0 {
		return Header{}, frameBad, errAt(ErrCorrupt, off, fmt.Sprintf("negative batch length %d", length))
	}
	size := int64(length) + logOverhead
	if size > int64(len(b)) {
		return Header{}, frameTruncated, errAt(ErrCorrupt, off, fmt.Sprintf("batch length %d runs past the %d bytes left", length, len(b)-logOverhead))
	}
	if length <= offMagic-logOverhead {
		return Header{}, frameBad, errAt(ErrCorrupt, off, fmt.Sprintf("batch length %d too short to hold the magic byte", length))
	}
	// The magic decides the layout of everything after it, so it is checked
	// before anything that assumes v2.
	switch magic := int8(b[offMagic]); magic {
	case 2:
	case 0, 1:
		return Header{}, frameBad, errAt(ErrUnsupportedMagic, off, fmt.Sprintf("magic %d message set; only magic 2 record batches are supported", magic))
	default:
		return Header{}, frameBad, errAt(ErrCorrupt, off, fmt.Sprintf("unknown magic %d", magic))
	}
	if length < minBatchLength {
		return Header{}, frameBad, errAt(ErrCorrupt, off, fmt.Sprintf("batch length %d shorter than the %d-byte header", length, minBatchLength))
	}
	batch := b[:size]
	h := parseHeader(batch)
	if checkCRC {
		if sum := checksum(batch); sum != h.CRC {
			return Header{}, frameBad, errAt(ErrCorrupt, off, fmt.Sprintf("crc mismatch: header says %#08x, bytes give %#08x", h.CRC, sum))
		}
	}
	if c := h.Codec(); c > Zstd {
		return Header{}, frameBad, errAt(ErrUnsupportedCodec, off, fmt.Sprintf("compression codec %d", c))
	}
	return h, frameOK, nil
}

// checkClientRules applies the rules Kafka's LogValidator imposes on batches
// a client produces, beyond being well formed.
func checkClientRules(h Header, off int) error {
	switch {
	case h.NumRecords <= 0:
		return errAt(ErrInvalidRecord, off, fmt.Sprintf("record count %d; a produced batch needs at least one record", h.NumRecords))
	case h.LastOffsetDelta != h.NumRecords-1:
		return errAt(ErrInvalidRecord, off, fmt.Sprintf("last offset delta %d does not match record count %d", h.LastOffsetDelta, h.NumRecords))
	case h.IsControl():
		return errAt(ErrInvalidRecord, off, "clients may not write control batches")
	case h.ProducerID >= 0 && h.BaseSequence < 0:
		return errAt(ErrInvalidRecord, off, fmt.Sprintf("producer id %d with invalid base sequence %d", h.ProducerID, h.BaseSequence))
	}
	return nil
}

// Validate checks the batches in b, the Records field of one partition of a
// Produce request, as Kafka's LogValidator does, and returns their headers.
// b must be one or more whole batches with nothing after them. Each batch
// must have a batchLength within b, magic 2, a good CRC-32C, a codec no
// higher than zstd, at least one record, lastOffsetDelta equal to the record
// count minus one, no control bit, and a base sequence when it has a
// producer id. Empty input is ErrInvalidRecord: Kafka requires a batch.
//
// Validate reads headers only and never decompresses; apart from the
// returned slice it does not allocate unless it fails. Whether a request may
// carry more than one batch (Produce v3+ may not) is the caller's rule:
// check len of the result. Rules that need topic configuration (keys on
// compacted topics, timestamp bounds, message size) are the caller's too.
func Validate(b []byte) ([]Header, error) {
	if len(b) == 0 {
		return nil, errAt(ErrInvalidRecord, 0, "no record batch")
	}
	hs := make([]Header, 0, 1)
	for off := 0; off < len(b); {
		h, _, err := nextBatch(b[off:], off)
		if err != nil {
			return nil, err
		}
		if err := checkClientRules(h, off); err != nil {
			return nil, err
		}
		hs = append(hs, h)
		off += h.Size()
	}
	return hs, nil
}

// Iterate walks the concatenated batches in b, such as a fetch response's
// records or a stored segment, and calls fn with each batch's header and its
// exact bytes (a subslice of b). It stops without error at a truncated tail,
// since fetch responses may end mid-batch, and returns an error wrapping
// ErrCorrupt, ErrUnsupportedMagic or ErrUnsupportedCodec at the first
// malformed batch (bad length, magic or CRC). An error from fn stops the walk
// and is returned as is.
//
// Unlike Validate, Iterate accepts what a broker may legitimately hold:
// control batches and batches emptied by compaction.
func Iterate(b []byte, fn func(h Header, batch []byte) error) error {
	return iterate(b, true, fn)
}

// IterateStored is Iterate without the CRC pass: for batches a broker
// stored itself, whose CRCs Validate checked when they were produced and
// whose storage has its own checksums (segment blocks). It still checks the
// framing, so a bug cannot walk it out of bounds.
func IterateStored(b []byte, fn func(h Header, batch []byte) error) error {
	return iterate(b, false, fn)
}

func iterate(b []byte, checkCRC bool, fn func(h Header, batch []byte) error) error {
	for off := 0; off < len(b); {
		h, status, err := nextBatchCRC(b[off:], off, checkCRC)
		switch status {
		case frameTruncated:
			return nil
		case frameBad:
			return err
		}
		size := h.Size()
		if err := fn(h, b[off:off+size:off+size]); err != nil {
			return err
		}
		off += size
	}
	return nil
}
