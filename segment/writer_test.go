package segment

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// writeSegment creates a segment at a fresh path and appends blocks.
func writeSegment(t *testing.T, base int64, blocks []testBlock) (*Writer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "seg")
	w, err := Create(path, base)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range blocks {
		ref, err := w.Append(b.enc)
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		if ref.BlockMeta != b.meta || ref.Size != int64(len(b.enc)) {
			t.Fatalf("append %d: ref %+v", i, ref)
		}
	}
	return w, path
}

// checkRefs reads every ref through a fresh file handle and compares it with
// the blocks it should hold.
func checkRefs(t *testing.T, path string, refs []BlockRef, want []testBlock) {
	t.Helper()
	if len(refs) != len(want) {
		t.Fatalf("%d refs, want %d", len(refs), len(want))
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pos := int64(FileHeaderSize)
	for i, r := range refs {
		if r.BlockMeta != want[i].meta || r.Pos != pos || r.Size != int64(len(want[i].enc)) {
			t.Fatalf("ref %d = %+v, want meta %+v at %d size %d", i, r, want[i].meta, pos, len(want[i].enc))
		}
		got, err := ReadBlockAt(f, r, nil)
		if err != nil {
			t.Fatalf("read block %d: %v", i, err)
		}
		if !bytes.Equal(got, want[i].payload) {
			t.Fatalf("block %d payload differs", i)
		}
		pos = r.End()
	}
}

func TestWriterSealRead(t *testing.T) {
	for _, n := range []int{0, 1, 2, 17} {
		rng := newRNG(uint64(10 + n))
		blocks := makeBlocks(t, rng, 1000, n)
		w, path := writeSegment(t, 1000, blocks)
		checkRefs(t, path, w.Blocks(), blocks)
		if err := w.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := w.Seal(); err != nil {
			t.Fatal(err)
		}
		late := AppendBlock(nil, BlockMeta{BaseOffset: 1 << 40, LastOffset: 1 << 40}, nil)
		if _, err := w.Append(late); !errors.Is(err, ErrSealed) {
			t.Errorf("append after seal: %v", err)
		}
		if err := w.Truncate(0); !errors.Is(err, ErrSealed) {
			t.Errorf("truncate after seal: %v", err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); !errors.Is(err, ErrClosed) {
			t.Errorf("second close: %v", err)
		}

		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(data)) != w.Size() {
			t.Errorf("file has %d bytes, Size says %d", len(data), w.Size())
		}
		// Encode must produce the same bytes as the writer.
		enc, err := Encode(1000, encoded(blocks))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, data) {
			t.Fatalf("Encode differs from the written file (%d vs %d bytes)", len(enc), len(data))
		}
		r, err := OpenReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		if r.BaseOffset() != 1000 || r.Size() != int64(len(data)) {
			t.Errorf("reader base %d size %d", r.BaseOffset(), r.Size())
		}
		checkRefs(t, path, r.Blocks(), blocks)
		for i, ref := range r.Blocks() {
			got, err := r.ReadBlock(ref, []byte("x"))
			if err != nil || !bytes.Equal(got, append([]byte("x"), blocks[i].payload...)) {
				t.Fatalf("ReadBlock %d: %v", i, err)
			}
		}
		// Recover of a sealed segment returns its index and refuses appends.
		rw, sealed, err := Recover(path)
		if err != nil || !sealed {
			t.Fatalf("Recover sealed = %v, %v", sealed, err)
		}
		checkRefs(t, path, rw.Blocks(), blocks)
		if _, err := rw.Append(late); !errors.Is(err, ErrSealed) {
			t.Errorf("append to recovered sealed segment: %v", err)
		}
		if err := rw.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCreateExisting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seg")
	w, err := Create(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := Create(path, 0); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Create over an existing file: %v", err)
	}
	if _, err := Create(filepath.Join(t.TempDir(), "x"), -1); err == nil {
		t.Fatal("Create with a negative base offset succeeded")
	}
}

func TestWriterAppendChecks(t *testing.T) {
	w, _ := writeSegment(t, 100, nil)
	defer w.Close()
	blk := func(base, last int64) []byte {
		return AppendBlock(nil, BlockMeta{BaseOffset: base, LastOffset: last}, []byte("batch"))
	}
	tests := []struct {
		name  string
		block []byte
		want  error
	}{
		{"below base offset", blk(99, 100), ErrOffsetOrder},
		{"first", blk(100, 109), nil},
		{"overlapping", blk(109, 110), ErrOffsetOrder},
		{"adjacent", blk(110, 110), nil},
		{"after a gap", blk(200, 300), nil},
		{"trailing bytes", append(blk(301, 301), 0), ErrCorrupt},
		{"truncated", blk(400, 400)[:55], ErrCorrupt},
		{"garbage", []byte("not a block at all, not at all, no, no, no, no, no!!"), ErrCorrupt},
	}
	for _, tt := range tests {
		before := w.Size()
		_, err := w.Append(tt.block)
		if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
		if err != nil && w.Size() != before {
			t.Errorf("%s: failed append changed size", tt.name)
		}
	}
	if got := len(w.Blocks()); got != 3 {
		t.Errorf("%d blocks, want 3", got)
	}
}

func TestWriterTruncate(t *testing.T) {
	rng := newRNG(20)
	blocks := makeBlocks(t, rng, 0, 6)
	w, path := writeSegment(t, 0, blocks)
	defer w.Close()
	old := w.Blocks()
	if err := w.Truncate(7); err == nil {
		t.Fatal("Truncate beyond the block count succeeded")
	}
	if err := w.Truncate(3); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != w.Size() || w.Size() != old[2].End() {
		t.Fatalf("file %d bytes, writer %d, want %d", st.Size(), w.Size(), old[2].End())
	}
	checkRefs(t, path, w.Blocks(), blocks[:3])
	// Offsets of dropped blocks can be written again.
	for _, b := range blocks[3:] {
		if _, err := w.Append(b.enc); err != nil {
			t.Fatal(err)
		}
	}
	checkRefs(t, path, w.Blocks(), blocks)
	// A slice returned before Truncate still describes what it did.
	checkRefs(t, path, old, blocks)
	if err := w.Truncate(0); err != nil {
		t.Fatal(err)
	}
	if w.Size() != FileHeaderSize || len(w.Blocks()) != 0 {
		t.Fatalf("after Truncate(0): size %d, %d blocks", w.Size(), len(w.Blocks()))
	}
}

// TestRecoverTornTail cuts the file at every byte position from the start of
// the last block to its end: Recover must return exactly the whole blocks
// before the cut, truncate the file there, and accept appends.
func TestRecoverTornTail(t *testing.T) {
	rng := newRNG(30)
	blocks := makeBlocks(t, rng, 50, 4)
	blocks[3] = testBlock{meta: BlockMeta{BaseOffset: 5000, LastOffset: 5001, MaxTimestamp: 7, BatchCount: 1}, payload: semiCompressible(rng, 1200)}
	blocks[3].enc = AppendBlock(nil, blocks[3].meta, blocks[3].payload)
	w, path := writeSegment(t, 50, blocks)
	full := w.Blocks()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	last := full[len(full)-1]
	extra := AppendBlock(nil, BlockMeta{BaseOffset: 6000, LastOffset: 6000}, []byte("more"))
	for cut := last.Pos; cut <= int64(len(data)); cut++ {
		p := filepath.Join(t.TempDir(), "seg")
		if err := os.WriteFile(p, data[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		rw, sealed, err := Recover(p)
		if err != nil || sealed {
			t.Fatalf("cut %d: Recover = sealed %v, %v", cut, sealed, err)
		}
		want := blocks[:3]
		if cut == int64(len(data)) {
			want = blocks
		}
		checkRefs(t, p, rw.Blocks(), want)
		if st, _ := os.Stat(p); st.Size() != rw.Size() || rw.Size() != full[len(want)-1].End() {
			t.Fatalf("cut %d: file %d bytes, writer %d, want %d", cut, st.Size(), rw.Size(), full[len(want)-1].End())
		}
		if _, err := rw.Append(extra); err != nil {
			t.Fatalf("cut %d: append after recovery: %v", cut, err)
		}
		if (cut-last.Pos)%16 != 0 && cut != int64(len(data)) {
			_ = rw.Close() // sealing (an fsync) at every cut only slows the test
			continue
		}
		if err := rw.Seal(); err != nil {
			t.Fatal(err)
		}
		if err := rw.Close(); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		r, err := OpenReader(bytes.NewReader(got), int64(len(got)))
		if err != nil {
			t.Fatalf("cut %d: open resealed: %v", cut, err)
		}
		if n := len(r.Blocks()); n != len(want)+1 {
			t.Fatalf("cut %d: resealed segment has %d blocks, want %d", cut, n, len(want)+1)
		}
	}
}

// TestRecoverTornSeal cuts a sealed file inside its indexes or trailer, as a
// crash during Seal would: Recover must see an unsealed file with all blocks.
func TestRecoverTornSeal(t *testing.T) {
	rng := newRNG(31)
	blocks := makeBlocks(t, rng, 0, 3)
	w, path := writeSegment(t, 0, blocks)
	end := w.Size()
	if err := w.Seal(); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for cut := end; cut < int64(len(data)); cut++ {
		p := filepath.Join(t.TempDir(), "seg")
		if err := os.WriteFile(p, data[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		rw, sealed, err := Recover(p)
		if err != nil || sealed {
			t.Fatalf("cut %d: Recover = sealed %v, %v", cut, sealed, err)
		}
		checkRefs(t, p, rw.Blocks(), blocks)
		if rw.Size() != end {
			t.Fatalf("cut %d: size %d, want %d", cut, rw.Size(), end)
		}
		_ = rw.Close()
	}
}

// TestRecoverCorruptBlock flips one bit inside a middle block of an unsealed
// file: Recover must keep only the blocks before it.
func TestRecoverCorruptBlock(t *testing.T) {
	rng := newRNG(32)
	blocks := makeBlocks(t, rng, 0, 6)
	w, path := writeSegment(t, 0, blocks)
	refs := w.Blocks()
	_ = w.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []int64{refs[3].Pos, refs[3].Pos + 30, refs[3].Pos + BlockHeaderSize, refs[3].End() - 1} {
		bad := bytes.Clone(data)
		bad[at] ^= 0x10
		p := filepath.Join(t.TempDir(), "seg")
		if err := os.WriteFile(p, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		rw, _, err := Recover(p)
		if err != nil {
			t.Fatal(err)
		}
		checkRefs(t, p, rw.Blocks(), blocks[:3])
		_ = rw.Close()
	}
}

func TestRecoverBadHeader(t *testing.T) {
	dir := t.TempDir()
	good := appendFileHeader(nil, 7)
	for name, data := range map[string][]byte{
		"empty":     nil,
		"short":     good[:10],
		"bad crc":   append(bytes.Clone(good[:19]), good[19]^1),
		"bad magic": append([]byte("XXXX"), good[4:]...),
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := Recover(p)
		var ce *CorruptionError
		if !errors.As(err, &ce) || ce.Path != p {
			t.Errorf("%s: err = %v, want a CorruptionError naming the file", name, err)
		}
	}
	if _, _, err := Recover(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// TestWriterStickyError injects a failing file (closed under the writer):
// a write that cannot be undone, and a failed fsync, must poison the writer.
func TestWriterStickyError(t *testing.T) {
	w, path := writeSegment(t, 0, nil)
	blk := AppendBlock(nil, BlockMeta{BaseOffset: 0, LastOffset: 0}, []byte("x"))
	if _, err := w.Append(blk); err != nil {
		t.Fatal(err)
	}
	_ = w.f.Close() // fault injection
	if _, err := w.Append(AppendBlock(nil, BlockMeta{BaseOffset: 1, LastOffset: 1}, nil)); err == nil {
		t.Fatal("append to a closed file succeeded")
	}
	for name, err := range map[string]error{"sync": w.Sync(), "seal": w.Seal(), "truncate": w.Truncate(0)} {
		if err == nil || err != w.err {
			t.Errorf("%s after a failed write: %v, want the sticky error", name, err)
		}
	}
	if len(w.Blocks()) != 1 || w.Size() != FileHeaderSize+int64(len(blk)) {
		t.Errorf("failed append changed the index: %d blocks, size %d", len(w.Blocks()), w.Size())
	}
	// Recovery from the file still finds the first block.
	rw, _, err := Recover(path)
	if err != nil || len(rw.Blocks()) != 1 {
		t.Fatalf("Recover: %v", err)
	}
	_ = rw.Close()
}
