package segment

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// Flush object format constants; FORMAT.md section 3 is the specification.
const (
	// FlushHeaderSize is the size of a flush object's header; its first run
	// starts at this position.
	FlushHeaderSize = 24
	// FlushTrailerSize is the size of a flush object's trailer, its last
	// bytes.
	FlushTrailerSize = 28

	flushMagic        = 0x5354464F // "STFO"
	flushTrailerMagic = 0x53544645 // "STFE"
	flushVersion      = 1
	runEntrySize      = 64
)

// RunKey names the partition a run belongs to.
type RunKey struct {
	TopicID   [16]byte
	Partition int32
}

// Run describes one run of a flush object: consecutive blocks of one
// partition, stored at [Pos, Pos+Size) of the object.
type Run struct {
	RunKey
	BaseOffset   int64 // first block's base offset
	LastOffset   int64 // last block's last offset (inclusive)
	MaxTimestamp int64 // maximum over the run's blocks
	Pos          int64 // position of the run's first block in the object
	Size         int64 // total encoded length of the run's blocks
	Blocks       int32 // number of blocks
}

// FlushObjectBuilder assembles one flush object in memory. It is not safe
// for concurrent use.
type FlushObjectBuilder struct {
	buf      []byte
	runs     []Run
	finished bool
}

// NewFlushObjectBuilder starts a flush object written by node nodeID at
// created (stored with millisecond precision).
func NewFlushObjectBuilder(nodeID int32, created time.Time) *FlushObjectBuilder {
	be := binary.BigEndian
	buf := make([]byte, 0, 64<<10)
	buf = be.AppendUint32(buf, flushMagic)
	buf = append(buf, flushVersion, 0, 0, 0)
	buf = be.AppendUint32(buf, uint32(nodeID))
	buf = be.AppendUint64(buf, uint64(created.UnixMilli()))
	buf = be.AppendUint32(buf, crc(buf))
	return &FlushObjectBuilder{buf: buf}
}

// AddRun appends a run of key's blocks (each from AppendBlock, offsets
// strictly increasing) and returns its directory entry, whose Pos and Size
// locate it in the finished object. Every block's header and payload CRC is
// verified, so a damaged block never becomes durable; on error nothing is
// added.
func (b *FlushObjectBuilder) AddRun(key RunKey, blocks [][]byte) (Run, error) {
	if b.finished {
		return Run{}, errors.New("segment: add run: flush object already finished")
	}
	if len(blocks) == 0 {
		return Run{}, errors.New("segment: add run: no blocks")
	}
	if key.Partition < 0 {
		return Run{}, fmt.Errorf("segment: add run: negative partition %d", key.Partition)
	}
	start := len(b.buf)
	size := 0
	for _, blk := range blocks {
		size += len(blk)
	}
	b.buf = slices.Grow(b.buf, size)
	run := Run{RunKey: key, Pos: int64(start), Blocks: int32(len(blocks))}
	for i, blk := range blocks {
		h, n, err := checkBlock(blk)
		if err == nil && n != len(blk) {
			err = corruptf(int64(n), "%d bytes after the block", len(blk)-n)
		}
		if err == nil && i > 0 && h.meta.BaseOffset <= run.LastOffset {
			err = fmt.Errorf("block at offset %d after offset %d: %w", h.meta.BaseOffset, run.LastOffset, ErrOffsetOrder)
		}
		if err != nil {
			b.buf = b.buf[:start]
			return Run{}, fmt.Errorf("segment: add run: block %d: %w", i, err)
		}
		if i == 0 {
			run.BaseOffset, run.MaxTimestamp = h.meta.BaseOffset, h.meta.MaxTimestamp
		}
		run.LastOffset = h.meta.LastOffset
		run.MaxTimestamp = max(run.MaxTimestamp, h.meta.MaxTimestamp)
		b.buf = append(b.buf, blk...)
	}
	run.Size = int64(len(b.buf) - start)
	b.runs = append(b.runs, run)
	return run, nil
}

// Grow makes room for n more bytes of runs and directory, so building an
// object of known size copies each block once.
func (b *FlushObjectBuilder) Grow(n int) { b.buf = slices.Grow(b.buf, n) }

// FlushDirEntrySize is the directory's size per run, for Grow.
const FlushDirEntrySize = 16 + 4 + 8*5 + 4

// Size is the object's length so far, without directory and trailer; the
// flusher compares it with its flush size threshold.
func (b *FlushObjectBuilder) Size() int { return len(b.buf) }

// Runs returns the runs added so far. The caller must not modify the slice.
func (b *FlushObjectBuilder) Runs() []Run { return b.runs[:len(b.runs):len(b.runs)] }

// Finish appends the directory and trailer and returns the complete object.
// The builder accepts no more runs; calling Finish again returns the same
// bytes.
func (b *FlushObjectBuilder) Finish() []byte {
	if b.finished {
		return b.buf
	}
	b.finished = true
	be := binary.BigEndian
	dirPos := len(b.buf)
	for _, r := range b.runs {
		b.buf = append(b.buf, r.TopicID[:]...)
		b.buf = be.AppendUint32(b.buf, uint32(r.Partition))
		b.buf = be.AppendUint64(b.buf, uint64(r.BaseOffset))
		b.buf = be.AppendUint64(b.buf, uint64(r.LastOffset))
		b.buf = be.AppendUint64(b.buf, uint64(r.MaxTimestamp))
		b.buf = be.AppendUint64(b.buf, uint64(r.Pos))
		b.buf = be.AppendUint64(b.buf, uint64(r.Size))
		b.buf = be.AppendUint32(b.buf, uint32(r.Blocks))
	}
	dirCRC := crc(b.buf[dirPos:])
	tr := len(b.buf)
	b.buf = be.AppendUint64(b.buf, uint64(dirPos))
	b.buf = be.AppendUint32(b.buf, uint32(len(b.runs)))
	b.buf = be.AppendUint32(b.buf, dirCRC)
	b.buf = append(b.buf, flushVersion, 0, 0, 0)
	b.buf = be.AppendUint32(b.buf, crc(b.buf[tr:]))
	b.buf = be.AppendUint32(b.buf, flushTrailerMagic)
	return b.buf
}

// FlushObjectHeader returns the writer's node id and creation time from a
// flush object's header (the first FlushHeaderSize bytes suffice), for
// attributing objects that no metadata references.
func FlushObjectHeader(obj []byte) (nodeID int32, created time.Time, err error) {
	if len(obj) < FlushHeaderSize {
		return 0, time.Time{}, &CorruptionError{Err: fmt.Errorf("flush object header: %d of %d bytes: %w", len(obj), FlushHeaderSize, io.ErrUnexpectedEOF)}
	}
	be := binary.BigEndian
	switch {
	case be.Uint32(obj) != flushMagic:
		return 0, time.Time{}, corruptf(0, "flush object header: bad magic %08x", be.Uint32(obj))
	case be.Uint32(obj[20:]) != crc(obj[:20]):
		return 0, time.Time{}, corruptf(0, "flush object header: crc %08x, computed %08x", be.Uint32(obj[20:]), crc(obj[:20]))
	case obj[4] != flushVersion:
		return 0, time.Time{}, corruptf(0, "flush object header: unsupported version %d", obj[4])
	case obj[5] != 0 || obj[6] != 0 || obj[7] != 0:
		return 0, time.Time{}, corruptf(0, "flush object header: reserved bytes set")
	}
	return int32(be.Uint32(obj[8:])), time.UnixMilli(int64(be.Uint64(obj[12:]))), nil
}

// ParseFlushObject verifies a flush object's trailer, directory and header
// and returns its runs in object order. It does not read the blocks;
// DecodeRun verifies those.
func ParseFlushObject(obj []byte) ([]Run, error) {
	size := int64(len(obj))
	if size < FlushHeaderSize+FlushTrailerSize {
		return nil, corruptf(0, "flush object: %d bytes is too short", size)
	}
	trailerPos := size - FlushTrailerSize
	tr := obj[trailerPos:]
	be := binary.BigEndian
	switch {
	case be.Uint32(tr[24:]) != flushTrailerMagic:
		return nil, corruptf(trailerPos, "flush object trailer: bad magic %08x", be.Uint32(tr[24:]))
	case be.Uint32(tr[20:]) != crc(tr[:20]):
		return nil, corruptf(trailerPos, "flush object trailer: crc %08x, computed %08x", be.Uint32(tr[20:]), crc(tr[:20]))
	case tr[16] != flushVersion:
		return nil, corruptf(trailerPos, "flush object trailer: unsupported version %d", tr[16])
	case tr[17] != 0 || tr[18] != 0 || tr[19] != 0:
		return nil, corruptf(trailerPos, "flush object trailer: reserved bytes set")
	}
	dirPos := int64(be.Uint64(tr[0:]))
	count := int64(be.Uint32(tr[8:]))
	if dirPos < FlushHeaderSize || dirPos > trailerPos || dirPos+count*runEntrySize != trailerPos {
		return nil, corruptf(trailerPos, "flush object trailer: directory of %d runs at %d does not end at the trailer (%d)", count, dirPos, trailerPos)
	}
	dir := obj[dirPos:trailerPos]
	if got, want := crc(dir), be.Uint32(tr[12:]); got != want {
		return nil, corruptf(dirPos, "flush object directory: crc %08x, trailer says %08x", got, want)
	}
	if _, _, err := FlushObjectHeader(obj); err != nil {
		return nil, err
	}
	runs := make([]Run, 0, count)
	pos := int64(FlushHeaderSize)
	for off := 0; off < len(dir); off += runEntrySize {
		e := dir[off:]
		var r Run
		copy(r.TopicID[:], e[:16])
		r.Partition = int32(be.Uint32(e[16:]))
		r.BaseOffset = int64(be.Uint64(e[20:]))
		r.LastOffset = int64(be.Uint64(e[28:]))
		r.MaxTimestamp = int64(be.Uint64(e[36:]))
		r.Pos = int64(be.Uint64(e[44:]))
		r.Size = int64(be.Uint64(e[52:]))
		r.Blocks = int32(be.Uint32(e[60:]))
		at := dirPos + int64(off)
		switch {
		case r.Partition < 0:
			return nil, corruptf(at, "flush object run %d: negative partition %d", len(runs), r.Partition)
		case r.BaseOffset < 0 || r.LastOffset < r.BaseOffset:
			return nil, corruptf(at, "flush object run %d: bad offsets [%d, %d]", len(runs), r.BaseOffset, r.LastOffset)
		case r.Pos != pos:
			return nil, corruptf(at, "flush object run %d: position %d, want %d", len(runs), r.Pos, pos)
		case r.Blocks < 1 || r.Size < int64(r.Blocks)*BlockHeaderSize || r.Size > dirPos-r.Pos:
			return nil, corruptf(at, "flush object run %d: %d blocks in %d bytes", len(runs), r.Blocks, r.Size)
		}
		runs = append(runs, r)
		pos += r.Size
	}
	if pos != dirPos {
		return nil, corruptf(dirPos, "flush object: runs end at %d, directory starts at %d", pos, dirPos)
	}
	return runs, nil
}

// DecodeRun verifies and decodes every block of a run's bytes
// (obj[Pos:Pos+Size] for a Run from ParseFlushObject, or any concatenation of
// whole blocks of one partition), appending their batches to dst. refs
// describes each block in order. Offsets must increase from block to block.
// An empty run is corrupt: a run holds at least one block.
func DecodeRun(dst, run []byte) (batches []byte, refs []BlockMeta, err error) {
	if len(run) == 0 {
		return dst, nil, corruptf(0, "run: no blocks")
	}
	out := dst
	for pos := 0; pos < len(run); {
		meta, o, n, err := DecodeBlock(out, run[pos:])
		if err != nil {
			return dst, nil, withPlace(err, "", int64(pos))
		}
		if len(refs) > 0 && meta.BaseOffset <= refs[len(refs)-1].LastOffset {
			return dst, nil, corruptf(int64(pos), "run: block at offset %d after offset %d: %w", meta.BaseOffset, refs[len(refs)-1].LastOffset, ErrOffsetOrder)
		}
		out = o
		refs = append(refs, meta)
		pos += n
	}
	return out, refs, nil
}
