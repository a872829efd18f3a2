package segment

import (
	"encoding/binary"
	"fmt"
	"io"
	"sort"
)

// Segment format constants; FORMAT.md section 2 is the specification.
const (
	// FileHeaderSize is the size of a segment's file header; its first block
	// starts at this position.
	FileHeaderSize = 20
	// TrailerSize is the size of a sealed segment's trailer, the last bytes
	// of the file. A reader of a segment object range-reads this many bytes
	// from the end first.
	TrailerSize = 40

	segmentMagic   = 0x53545347 // "STSG"
	trailerMagic   = 0x53545345 // "STSE"
	segmentVersion = 1

	indexEntrySize = 40
	timeEntrySize  = 12
)

// BlockRef locates one block in a segment: its meta plus the position and
// encoded size of the block in the file or object.
type BlockRef struct {
	BlockMeta
	Pos  int64 // position of the block's first header byte
	Size int64 // encoded length of the block
}

// End is the position just past the block.
func (r BlockRef) End() int64 { return r.Pos + r.Size }

// Find returns the index of the block in refs (sorted by offset, as every
// segment's blocks are) that contains offset or, when offset falls in a gap
// or before the first block, the first block after it. ok is false when
// every block ends before offset.
func Find(refs []BlockRef, offset int64) (int, bool) {
	i := sort.Search(len(refs), func(i int) bool { return refs[i].LastOffset >= offset })
	return i, i < len(refs)
}

// timeEntry is one time index entry: the block at which the running maximum
// timestamp first reaches ts.
type timeEntry struct {
	ts    int64
	block uint32
}

// buildTimeIndex derives the time index of refs (FORMAT.md 2.4).
func buildTimeIndex(refs []BlockRef) []timeEntry {
	var out []timeEntry
	for i, r := range refs {
		if len(out) == 0 || r.MaxTimestamp > out[len(out)-1].ts {
			out = append(out, timeEntry{ts: r.MaxTimestamp, block: uint32(i)})
		}
	}
	return out
}

func appendFileHeader(dst []byte, base int64) []byte {
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, segmentMagic)
	dst = append(dst, segmentVersion, 0, 0, 0)
	dst = binary.BigEndian.AppendUint64(dst, uint64(base))
	return binary.BigEndian.AppendUint32(dst, crc(dst[start:]))
}

// parseFileHeader validates a segment file header and returns its base
// offset.
func parseFileHeader(b []byte) (int64, error) {
	if len(b) < FileHeaderSize {
		return 0, &CorruptionError{Err: fmt.Errorf("segment header: %d of %d bytes: %w", len(b), FileHeaderSize, io.ErrUnexpectedEOF)}
	}
	be := binary.BigEndian
	switch {
	case be.Uint32(b) != segmentMagic:
		return 0, corruptf(0, "segment header: bad magic %08x", be.Uint32(b))
	case be.Uint32(b[16:]) != crc(b[:16]):
		return 0, corruptf(0, "segment header: crc %08x, computed %08x", be.Uint32(b[16:]), crc(b[:16]))
	case b[4] != segmentVersion:
		return 0, corruptf(0, "segment header: unsupported version %d", b[4])
	case b[5] != 0 || b[6] != 0 || b[7] != 0:
		return 0, corruptf(0, "segment header: reserved bytes set")
	}
	base := int64(be.Uint64(b[8:]))
	if base < 0 {
		return 0, corruptf(0, "segment header: negative base offset %d", base)
	}
	return base, nil
}

// appendIndex appends the block index, time index and trailer of a segment
// whose blocks (refs) end at indexPos.
func appendIndex(dst []byte, base int64, refs []BlockRef, indexPos int64) []byte {
	times := buildTimeIndex(refs)
	be := binary.BigEndian
	start := len(dst)
	for _, r := range refs {
		dst = be.AppendUint64(dst, uint64(r.Pos))
		dst = be.AppendUint64(dst, uint64(r.BaseOffset))
		dst = be.AppendUint64(dst, uint64(r.LastOffset))
		dst = be.AppendUint64(dst, uint64(r.MaxTimestamp))
		dst = be.AppendUint32(dst, uint32(r.Size))
		dst = be.AppendUint32(dst, uint32(r.BatchCount))
	}
	for _, t := range times {
		dst = be.AppendUint64(dst, uint64(t.ts))
		dst = be.AppendUint32(dst, t.block)
	}
	indexCRC := crc(dst[start:])
	tr := len(dst)
	dst = be.AppendUint64(dst, uint64(indexPos))
	dst = be.AppendUint32(dst, uint32(len(refs)))
	dst = be.AppendUint32(dst, uint32(len(times)))
	dst = be.AppendUint64(dst, uint64(base))
	dst = be.AppendUint32(dst, indexCRC)
	dst = append(dst, segmentVersion, 0, 0, 0)
	dst = be.AppendUint32(dst, crc(dst[tr:]))
	return be.AppendUint32(dst, trailerMagic)
}

// segmentIndex is the parsed, verified index of a sealed segment.
type segmentIndex struct {
	base  int64
	refs  []BlockRef
	times []timeEntry
}

// readFull reads len(b) bytes at off, treating a short read as an I/O error
// (the caller passed a size larger than what r holds).
func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("segment: read %d bytes at %d: %w", len(b), off, err)
}

// readIndex reads and verifies the trailer, indexes and file header of the
// sealed segment of the given size in r. Structural problems are
// *CorruptionError; failed reads are returned as they are, so callers can
// tell damage from I/O trouble.
func readIndex(r io.ReaderAt, size int64) (*segmentIndex, error) {
	if size < FileHeaderSize+TrailerSize {
		return nil, corruptf(0, "segment: %d bytes is too short to be sealed", size)
	}
	trailerPos := size - TrailerSize
	var tr [TrailerSize]byte
	if err := readFull(r, tr[:], trailerPos); err != nil {
		return nil, err
	}
	be := binary.BigEndian
	switch {
	case be.Uint32(tr[36:]) != trailerMagic:
		return nil, corruptf(trailerPos, "segment trailer: bad magic %08x", be.Uint32(tr[36:]))
	case be.Uint32(tr[32:]) != crc(tr[:32]):
		return nil, corruptf(trailerPos, "segment trailer: crc %08x, computed %08x", be.Uint32(tr[32:]), crc(tr[:32]))
	case tr[28] != segmentVersion:
		return nil, corruptf(trailerPos, "segment trailer: unsupported version %d", tr[28])
	case tr[29] != 0 || tr[30] != 0 || tr[31] != 0:
		return nil, corruptf(trailerPos, "segment trailer: reserved bytes set")
	}
	indexPos := int64(be.Uint64(tr[0:]))
	n, m := int64(be.Uint32(tr[8:])), int64(be.Uint32(tr[12:]))
	base := int64(be.Uint64(tr[16:]))
	indexCRC := be.Uint32(tr[24:])
	switch {
	case indexPos < FileHeaderSize || indexPos > trailerPos:
		return nil, corruptf(trailerPos, "segment trailer: index position %d outside [%d, %d]", indexPos, FileHeaderSize, trailerPos)
	case n > (indexPos-FileHeaderSize)/BlockHeaderSize:
		return nil, corruptf(trailerPos, "segment trailer: %d blocks cannot fit in %d bytes", n, indexPos-FileHeaderSize)
	case m > n || (m == 0) != (n == 0):
		return nil, corruptf(trailerPos, "segment trailer: %d time entries for %d blocks", m, n)
	case indexPos+n*indexEntrySize+m*timeEntrySize != trailerPos:
		return nil, corruptf(trailerPos, "segment trailer: indexes of %d+%d entries at %d do not end at the trailer (%d)", n, m, indexPos, trailerPos)
	}

	var hdr [FileHeaderSize]byte
	if err := readFull(r, hdr[:], 0); err != nil {
		return nil, err
	}
	hbase, err := parseFileHeader(hdr[:])
	if err != nil {
		return nil, err
	}
	if hbase != base {
		return nil, corruptf(trailerPos, "segment trailer: base offset %d, header says %d", base, hbase)
	}

	idx := make([]byte, trailerPos-indexPos)
	if err := readFull(r, idx, indexPos); err != nil {
		return nil, err
	}
	if got := crc(idx); got != indexCRC {
		return nil, corruptf(indexPos, "segment index: crc %08x, trailer says %08x", got, indexCRC)
	}
	refs, err := parseBlockIndex(idx[:n*indexEntrySize], base, indexPos)
	if err != nil {
		return nil, withPlace(err, "", indexPos)
	}
	times, err := parseTimeIndex(idx[n*indexEntrySize:], refs)
	if err != nil {
		return nil, withPlace(err, "", indexPos+n*indexEntrySize)
	}
	return &segmentIndex{base: base, refs: refs, times: times}, nil
}

// parseBlockIndex decodes and checks block index entries: they must tile
// [FileHeaderSize, indexPos) and have increasing offsets not below base.
func parseBlockIndex(b []byte, base, indexPos int64) ([]BlockRef, error) {
	be := binary.BigEndian
	refs := make([]BlockRef, 0, len(b)/indexEntrySize)
	pos := int64(FileHeaderSize)
	prevLast := base - 1
	for off := 0; off+indexEntrySize <= len(b); off += indexEntrySize {
		e := b[off:]
		r := BlockRef{
			Pos: int64(be.Uint64(e[0:])),
			BlockMeta: BlockMeta{
				BaseOffset:   int64(be.Uint64(e[8:])),
				LastOffset:   int64(be.Uint64(e[16:])),
				MaxTimestamp: int64(be.Uint64(e[24:])),
				BatchCount:   int32(be.Uint32(e[36:])),
			},
			Size: int64(be.Uint32(e[32:])),
		}
		switch {
		case r.Pos != pos:
			return nil, corruptf(int64(off), "block index entry %d: position %d, want %d", len(refs), r.Pos, pos)
		case r.Size < BlockHeaderSize || r.Size > BlockHeaderSize+MaxBlockSize || r.End() > indexPos:
			return nil, corruptf(int64(off), "block index entry %d: bad size %d", len(refs), r.Size)
		case r.BaseOffset <= prevLast || r.LastOffset < r.BaseOffset:
			return nil, corruptf(int64(off), "block index entry %d: offsets [%d, %d] after %d: %w", len(refs), r.BaseOffset, r.LastOffset, prevLast, ErrOffsetOrder)
		case r.BatchCount < 0:
			return nil, corruptf(int64(off), "block index entry %d: negative batch count", len(refs))
		}
		refs = append(refs, r)
		pos, prevLast = r.End(), r.LastOffset
	}
	if pos != indexPos {
		return nil, corruptf(0, "block index: blocks end at %d, index starts at %d", pos, indexPos)
	}
	return refs, nil
}

// parseTimeIndex decodes time index entries and checks them against refs: it
// must be exactly the index buildTimeIndex derives from them.
func parseTimeIndex(b []byte, refs []BlockRef) ([]timeEntry, error) {
	be := binary.BigEndian
	times := make([]timeEntry, 0, len(b)/timeEntrySize)
	for off := 0; off+timeEntrySize <= len(b); off += timeEntrySize {
		t := timeEntry{ts: int64(be.Uint64(b[off:])), block: be.Uint32(b[off+8:])}
		i := len(times)
		switch {
		case i == 0 && t.block != 0:
			return nil, corruptf(int64(off), "time index: first entry is block %d", t.block)
		case i > 0 && (t.block <= times[i-1].block || t.ts <= times[i-1].ts):
			return nil, corruptf(int64(off), "time index entry %d: not increasing", i)
		case int(t.block) >= len(refs) || refs[t.block].MaxTimestamp != t.ts:
			return nil, corruptf(int64(off), "time index entry %d: does not match block %d", i, t.block)
		}
		times = append(times, t)
	}
	// Every block between two entries must stay below the later entry's
	// timestamp, or FindTimestamp would skip it.
	for i, t := range times {
		end := len(refs)
		if i+1 < len(times) {
			end = int(times[i+1].block)
		}
		for _, r := range refs[t.block+1 : end] {
			if r.MaxTimestamp > t.ts {
				return nil, corruptf(int64(i*timeEntrySize), "time index entry %d: block with later max timestamp %d not indexed", i, r.MaxTimestamp)
			}
		}
	}
	return times, nil
}
