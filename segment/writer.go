package segment

import (
	"errors"
	"fmt"
	"os"
	"slices"
)

// Writer appends blocks to one segment file and seals it. It is not safe for
// concurrent use: the caller serialises calls (the hot tier holds its
// partition lock). Blocks already appended may be read concurrently through
// another handle with ReadBlockAt.
//
// After a failed write whose effect on the file is unknown (a failed fsync,
// or a failed write that could not be undone) every later call returns that
// error: the caller must Close the writer and Recover the file, which
// re-derives the truth from the bytes on disk.
type Writer struct {
	f      *os.File
	path   string
	base   int64
	size   int64
	refs   []BlockRef
	sealed bool
	closed bool
	err    error
}

// Create creates a new segment file at path (failing if it exists) and writes
// its header. Nothing is fsynced: the caller decides when with Sync (and is
// responsible for syncing the directory if the file's existence must survive
// a crash).
func Create(path string, baseOffset int64) (*Writer, error) {
	if baseOffset < 0 {
		return nil, fmt.Errorf("segment: create %s: negative base offset %d", path, baseOffset)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("segment: create: %w", err)
	}
	if _, err := f.WriteAt(appendFileHeader(nil, baseOffset), 0); err != nil {
		_ = f.Close()
		_ = os.Remove(path) // we created it exclusively; leave no headerless file behind
		return nil, fmt.Errorf("segment: create %s: %w", path, err)
	}
	return &Writer{f: f, path: path, base: baseOffset, size: FileHeaderSize}, nil
}

// check returns why the writer cannot be written to, if it cannot.
func (w *Writer) check() error {
	switch {
	case w.closed:
		return ErrClosed
	case w.err != nil:
		return w.err
	case w.sealed:
		return ErrSealed
	}
	return nil
}

// Append writes one block (as produced by AppendBlock) at the end of the
// segment with a single write call, without fsync, and returns where it was
// written. The block's header is validated and its offsets must follow the
// previous block's (ErrOffsetOrder); its payload CRC is not re-checked,
// because the block was just encoded by the caller.
func (w *Writer) Append(block []byte) (BlockRef, error) {
	if err := w.check(); err != nil {
		return BlockRef{}, err
	}
	meta, n, err := PeekBlock(block)
	if err != nil {
		return BlockRef{}, fmt.Errorf("segment: append to %s: %w", w.path, err)
	}
	if n != len(block) {
		return BlockRef{}, fmt.Errorf("segment: append to %s: %w", w.path, corruptf(int64(n), "%d bytes after the block", len(block)-n))
	}
	if err := w.checkOrder(meta); err != nil {
		return BlockRef{}, err
	}
	if _, err := w.f.WriteAt(block, w.size); err != nil {
		// Undo a partial write so the file keeps ending on a block boundary.
		if terr := w.f.Truncate(w.size); terr != nil {
			w.err = fmt.Errorf("segment: append to %s: %w (and truncating the partial block: %v)", w.path, err, terr)
			return BlockRef{}, w.err
		}
		return BlockRef{}, fmt.Errorf("segment: append to %s: %w", w.path, err)
	}
	ref := BlockRef{BlockMeta: meta, Pos: w.size, Size: int64(n)}
	w.refs = append(w.refs, ref)
	w.size += int64(n)
	return ref, nil
}

func (w *Writer) checkOrder(meta BlockMeta) error {
	prevLast := w.base - 1
	if len(w.refs) > 0 {
		prevLast = w.refs[len(w.refs)-1].LastOffset
	}
	if meta.BaseOffset <= prevLast {
		return fmt.Errorf("segment: append to %s: block at offset %d after offset %d: %w", w.path, meta.BaseOffset, prevLast, ErrOffsetOrder)
	}
	return nil
}

// Sync fsyncs the file. A failed fsync is sticky (see Writer): after one,
// the kernel may have dropped the dirty pages, so retrying cannot prove the
// data reached the disk.
func (w *Writer) Sync() error {
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	if err := w.f.Sync(); err != nil {
		w.err = fmt.Errorf("segment: sync %s: %w", w.path, err)
		return w.err
	}
	return nil
}

// Size is the file's length: header, blocks and, once sealed, indexes and
// trailer.
func (w *Writer) Size() int64 { return w.size }

// BaseOffset is the segment's base offset from its header.
func (w *Writer) BaseOffset() int64 { return w.base }

// Path is the file the writer writes.
func (w *Writer) Path() string { return w.path }

// Sealed reports whether the segment has been sealed.
func (w *Writer) Sealed() bool { return w.sealed }

// Blocks returns the in-memory index of the segment's blocks in offset order.
// The writer never modifies the returned slice's elements later (Append adds
// beyond its length, Truncate replaces the slice), so it may be kept and
// read without holding the caller's lock; the caller must not modify it.
func (w *Writer) Blocks() []BlockRef { return w.refs[:len(w.refs):len(w.refs)] }

// Truncate drops every block after the first keepBlocks: the file is cut at
// the end of the last kept block and fsynced, so dropped blocks cannot
// reappear after a crash.
func (w *Writer) Truncate(keepBlocks int) error {
	if err := w.check(); err != nil {
		return err
	}
	if keepBlocks < 0 || keepBlocks > len(w.refs) {
		return fmt.Errorf("segment: truncate %s: keep %d of %d blocks", w.path, keepBlocks, len(w.refs))
	}
	newSize := int64(FileHeaderSize)
	if keepBlocks > 0 {
		newSize = w.refs[keepBlocks-1].End()
	}
	if err := w.f.Truncate(newSize); err != nil {
		return fmt.Errorf("segment: truncate %s: %w", w.path, err)
	}
	// Copy, so slices returned by Blocks earlier never see later appends.
	w.refs = slices.Clone(w.refs[:keepBlocks])
	w.size = newSize
	if err := w.f.Sync(); err != nil {
		w.err = fmt.Errorf("segment: truncate %s: sync: %w", w.path, err)
		return w.err
	}
	return nil
}

// Seal appends the block index, time index and trailer in one write and
// fsyncs the file. Afterwards Append and Truncate return ErrSealed and the
// file is readable with OpenReader. A crash before Seal returns leaves a
// file Recover treats as unsealed.
func (w *Writer) Seal() error {
	if err := w.check(); err != nil {
		return err
	}
	idx := appendIndex(nil, w.base, w.refs, w.size)
	if _, err := w.f.WriteAt(idx, w.size); err != nil {
		if terr := w.f.Truncate(w.size); terr != nil {
			w.err = fmt.Errorf("segment: seal %s: %w (and truncating the partial index: %v)", w.path, err, terr)
			return w.err
		}
		return fmt.Errorf("segment: seal %s: %w", w.path, err)
	}
	if err := w.f.Sync(); err != nil {
		w.err = fmt.Errorf("segment: seal %s: sync: %w", w.path, err)
		return w.err
	}
	w.sealed = true
	w.size += int64(len(idx))
	return nil
}

// Close closes the file without syncing it; call Sync or Seal first for
// durability. A second Close returns ErrClosed.
func (w *Writer) Close() error {
	if w.closed {
		return ErrClosed
	}
	w.closed = true
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("segment: close %s: %w", w.path, err)
	}
	return nil
}

// Recover opens the segment file at path after a crash (or a clean
// shutdown) and returns a Writer for it.
//
// A sealed file (valid trailer and indexes) is returned with sealed true and
// its blocks from the index; its block payloads are verified when read.
//
// Otherwise the blocks are scanned from the header, each block's header and
// payload CRC verified, and the file is truncated (and fsynced) at the first
// block that is incomplete, corrupt or out of offset order, which is where a
// crash tore the tail. The returned Writer appends after the last good
// block. Recover never returns a block that failed its checks. A file whose
// header is damaged cannot be recovered (its base offset is unknown) and
// yields a *CorruptionError; read errors are returned as they are, and
// never cause truncation.
func Recover(path string) (w *Writer, sealed bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, false, fmt.Errorf("segment: recover: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, false, fmt.Errorf("segment: recover: %w", err)
	}
	size := st.Size()

	var hdr [FileHeaderSize]byte
	if size < FileHeaderSize {
		return nil, false, &CorruptionError{Path: path, Err: fmt.Errorf("file of %d bytes has no header", size)}
	}
	if err := readFull(f, hdr[:], 0); err != nil {
		return nil, false, fmt.Errorf("segment: recover %s: %w", path, err)
	}
	base, err := parseFileHeader(hdr[:])
	if err != nil {
		return nil, false, withPlace(err, path, 0)
	}
	w = &Writer{f: f, path: path, base: base}

	idx, err := readIndex(f, size)
	if err == nil {
		w.refs, w.size, w.sealed = idx.refs, size, true
		return w, true, nil
	}
	if !errors.Is(err, ErrCorrupt) {
		return nil, false, fmt.Errorf("segment: recover %s: %w", path, err)
	}
	// Not (validly) sealed: scan.
	if err := w.scan(size); err != nil {
		return nil, false, err
	}
	if w.size < size {
		if err := f.Truncate(w.size); err != nil {
			return nil, false, fmt.Errorf("segment: recover %s: truncate torn tail at %d: %w", path, w.size, err)
		}
		if err := f.Sync(); err != nil {
			return nil, false, fmt.Errorf("segment: recover %s: sync: %w", path, err)
		}
	}
	return w, false, nil
}

// scan walks the blocks of an unsealed file of the given size, filling
// w.refs and setting w.size to the end of the last good block.
func (w *Writer) scan(size int64) error {
	w.size = FileHeaderSize
	var buf []byte
	for size-w.size >= BlockHeaderSize {
		var hb [BlockHeaderSize]byte
		if err := readFull(w.f, hb[:], w.size); err != nil {
			return fmt.Errorf("segment: recover %s: %w", w.path, err)
		}
		h, err := parseBlockHeader(hb[:])
		if err != nil {
			return nil
		}
		n := int64(h.encodedLen())
		if n > size-w.size {
			return nil // torn
		}
		buf = slices.Grow(buf[:0], int(n))[:n]
		if err := readFull(w.f, buf, w.size); err != nil {
			return fmt.Errorf("segment: recover %s: %w", w.path, err)
		}
		if _, _, err := checkBlock(buf); err != nil {
			return nil
		}
		if w.checkOrder(h.meta) != nil {
			return nil
		}
		w.refs = append(w.refs, BlockRef{BlockMeta: h.meta, Pos: w.size, Size: n})
		w.size += n
	}
	return nil
}
