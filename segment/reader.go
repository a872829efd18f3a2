package segment

import (
	"fmt"
	"io"
	"sort"
)

// Reader reads a sealed segment (a file or an object behind an io.ReaderAt).
// OpenReader loads and verifies the indexes once; afterwards a Reader is
// immutable and safe for concurrent use, provided r is (os.File is).
type Reader struct {
	r     io.ReaderAt
	size  int64
	base  int64
	refs  []BlockRef
	times []timeEntry
}

// OpenReader reads and verifies the trailer, block index, time index and
// header of the sealed segment of the given size held by r. It reads only
// those (two small reads from the end plus the header), never the blocks.
// Damage is reported as a *CorruptionError (errors.Is ErrCorrupt); a failed
// read is returned as is.
func OpenReader(r io.ReaderAt, size int64) (*Reader, error) {
	idx, err := readIndex(r, size)
	if err != nil {
		return nil, err
	}
	return &Reader{r: r, size: size, base: idx.base, refs: idx.refs, times: idx.times}, nil
}

// BaseOffset is the segment's base offset.
func (r *Reader) BaseOffset() int64 { return r.base }

// Size is the segment's length in bytes.
func (r *Reader) Size() int64 { return r.size }

// Blocks returns the block index in offset order. The slice is shared: the
// caller must not modify it.
func (r *Reader) Blocks() []BlockRef { return r.refs[:len(r.refs):len(r.refs)] }

// FindOffset returns the block containing offset or, when offset falls in a
// gap or before the first block, the first block after it. ok is false when
// offset is past the segment's last offset.
func (r *Reader) FindOffset(offset int64) (BlockRef, bool) {
	i, ok := Find(r.refs, offset)
	if !ok {
		return BlockRef{}, false
	}
	return r.refs[i], true
}

// FindTimestamp returns the first block whose MaxTimestamp is >= ts, which
// is the first block that can hold a record with timestamp >= ts (Kafka's
// ListOffsets semantics). It searches the time index, so it is correct even
// though per-block timestamps need not increase. ok is false when no block
// reaches ts.
func (r *Reader) FindTimestamp(ts int64) (BlockRef, bool) {
	i := sort.Search(len(r.times), func(i int) bool { return r.times[i].ts >= ts })
	if i == len(r.times) {
		return BlockRef{}, false
	}
	return r.refs[r.times[i].block], true
}

// ReadBlock reads, verifies and decompresses the block ref (from Blocks,
// FindOffset or FindTimestamp) and appends its batches to dst.
func (r *Reader) ReadBlock(ref BlockRef, dst []byte) ([]byte, error) {
	return ReadBlockAt(r.r, ref, dst)
}

// Encode builds a whole sealed segment in memory from encoded blocks (from
// AppendBlock), for segment objects written to the object store. Every
// block's header and payload CRC is verified and offsets must increase
// (ErrOffsetOrder) from baseOffset on, so a damaged block is never made
// durable. The result is byte-for-byte what a Writer would produce by
// appending the same blocks and sealing.
func Encode(baseOffset int64, blocks [][]byte) ([]byte, error) {
	if baseOffset < 0 {
		return nil, fmt.Errorf("segment: encode: negative base offset %d", baseOffset)
	}
	total := FileHeaderSize + TrailerSize
	for _, b := range blocks {
		total += len(b) + indexEntrySize + timeEntrySize
	}
	out := make([]byte, 0, total)
	out = appendFileHeader(out, baseOffset)
	refs := make([]BlockRef, 0, len(blocks))
	prevLast := baseOffset - 1
	for i, b := range blocks {
		h, n, err := checkBlock(b)
		if err != nil {
			return nil, fmt.Errorf("segment: encode: block %d: %w", i, err)
		}
		if n != len(b) {
			return nil, fmt.Errorf("segment: encode: block %d: %w", i, corruptf(int64(n), "%d bytes after the block", len(b)-n))
		}
		if h.meta.BaseOffset <= prevLast {
			return nil, fmt.Errorf("segment: encode: block %d at offset %d after offset %d: %w", i, h.meta.BaseOffset, prevLast, ErrOffsetOrder)
		}
		refs = append(refs, BlockRef{BlockMeta: h.meta, Pos: int64(len(out)), Size: int64(n)})
		out = append(out, b...)
		prevLast = h.meta.LastOffset
	}
	return appendIndex(out, baseOffset, refs, int64(len(out))), nil
}
