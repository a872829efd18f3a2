package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// gapSegment builds a sealed segment with blocks [10,19] [30,39] [40,40]
// [100,149] and non-monotonic max timestamps 100, 50, 300, 200.
func gapSegment(t *testing.T) (*Reader, []byte) {
	t.Helper()
	metas := []BlockMeta{
		{BaseOffset: 10, LastOffset: 19, MaxTimestamp: 100, BatchCount: 1},
		{BaseOffset: 30, LastOffset: 39, MaxTimestamp: 50, BatchCount: 2},
		{BaseOffset: 40, LastOffset: 40, MaxTimestamp: 300, BatchCount: 1},
		{BaseOffset: 100, LastOffset: 149, MaxTimestamp: 200, BatchCount: 3},
	}
	var blocks [][]byte
	for i, m := range metas {
		blocks = append(blocks, AppendBlock(nil, m, bytes.Repeat([]byte{byte(i)}, 1000*i)))
	}
	data, err := Encode(5, blocks)
	if err != nil {
		t.Fatal(err)
	}
	r, err := OpenReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	return r, data
}

func TestFindOffset(t *testing.T) {
	r, _ := gapSegment(t)
	tests := []struct {
		offset int64
		want   int64 // base offset of the expected block, -1 for none
	}{
		{-1, 10}, {0, 10}, {5, 10}, {10, 10}, {15, 10}, {19, 10},
		{20, 30}, {29, 30}, {30, 30}, {39, 30},
		{40, 40},
		{41, 100}, {99, 100}, {100, 100}, {149, 100},
		{150, -1}, {1 << 62, -1},
	}
	for _, tt := range tests {
		ref, ok := r.FindOffset(tt.offset)
		if got := map[bool]int64{true: ref.BaseOffset, false: -1}[ok]; got != tt.want {
			t.Errorf("FindOffset(%d) = %d (ok %v), want %d", tt.offset, ref.BaseOffset, ok, tt.want)
		}
		i, ok := Find(r.Blocks(), tt.offset)
		if ok != (tt.want >= 0) || ok && r.Blocks()[i].BaseOffset != tt.want {
			t.Errorf("Find(%d) = %d, %v", tt.offset, i, ok)
		}
	}
	if _, ok := Find(nil, 0); ok {
		t.Error("Find in no refs succeeded")
	}
}

func TestFindTimestamp(t *testing.T) {
	r, _ := gapSegment(t)
	tests := []struct {
		ts   int64
		want int64 // base offset of the expected block, -1 for none
	}{
		{-1 << 63, 10}, {0, 10}, {50, 10}, {100, 10},
		{101, 40}, {200, 40}, {300, 40},
		{301, -1},
	}
	for _, tt := range tests {
		ref, ok := r.FindTimestamp(tt.ts)
		if got := map[bool]int64{true: ref.BaseOffset, false: -1}[ok]; got != tt.want {
			t.Errorf("FindTimestamp(%d) = %d (ok %v), want %d", tt.ts, ref.BaseOffset, ok, tt.want)
		}
	}
}

// TestFindTimestampRandom compares FindTimestamp with a linear scan over
// random, non-monotonic timestamps.
func TestFindTimestampRandom(t *testing.T) {
	rng := newRNG(40)
	for round := range 20 {
		blocks := makeBlocks(t, rng, 0, 1+round*3)
		data, err := Encode(0, encoded(blocks))
		if err != nil {
			t.Fatal(err)
		}
		r, err := OpenReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		for ts := int64(990); ts <= 1510; ts++ {
			want := -1
			for i, b := range blocks {
				if b.meta.MaxTimestamp >= ts {
					want = i
					break
				}
			}
			ref, ok := r.FindTimestamp(ts)
			if ok != (want >= 0) || ok && ref != r.Blocks()[want] {
				t.Fatalf("round %d: FindTimestamp(%d) = %+v %v, want block %d", round, ts, ref, ok, want)
			}
		}
	}
}

func TestEmptySegment(t *testing.T) {
	data, err := Encode(77, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := OpenReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if r.BaseOffset() != 77 || len(r.Blocks()) != 0 {
		t.Fatalf("base %d, %d blocks", r.BaseOffset(), len(r.Blocks()))
	}
	if _, ok := r.FindOffset(0); ok {
		t.Error("FindOffset in an empty segment succeeded")
	}
	if _, ok := r.FindTimestamp(0); ok {
		t.Error("FindTimestamp in an empty segment succeeded")
	}
}

func TestEncodeChecks(t *testing.T) {
	a := AppendBlock(nil, BlockMeta{BaseOffset: 10, LastOffset: 20}, []byte("a"))
	b := AppendBlock(nil, BlockMeta{BaseOffset: 21, LastOffset: 21}, []byte("b"))
	bad := bytes.Clone(b)
	bad[len(bad)-1] ^= 1
	tests := []struct {
		name   string
		base   int64
		blocks [][]byte
		want   error
	}{
		{"ok", 10, [][]byte{a, b}, nil},
		{"below base", 11, [][]byte{a, b}, ErrOffsetOrder},
		{"out of order", 0, [][]byte{b, a}, ErrOffsetOrder},
		{"payload crc", 0, [][]byte{a, bad}, ErrCorrupt},
		{"trailing bytes", 0, [][]byte{append(bytes.Clone(a), 0)}, ErrCorrupt},
	}
	for _, tt := range tests {
		_, err := Encode(tt.base, tt.blocks)
		if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
}

// TestOpenReaderCorruption flips every bit outside the blocks (header,
// indexes, trailer): OpenReader must fail. Flipping a bit inside a block
// must make ReadBlock of that block fail.
func TestOpenReaderCorruption(t *testing.T) {
	r, data := gapSegment(t)
	refs := r.Blocks()
	blocksEnd := refs[len(refs)-1].End()
	for bit := range len(data) * 8 {
		at := int64(bit / 8)
		if at >= FileHeaderSize && at < blocksEnd {
			continue
		}
		bad := bytes.Clone(data)
		bad[at] ^= 1 << (bit % 8)
		if _, err := OpenReader(bytes.NewReader(bad), int64(len(bad))); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("bit %d flipped at byte %d: err = %v", bit, at, err)
		}
	}
	for i, ref := range refs {
		for _, at := range []int64{ref.Pos, ref.Pos + 20, ref.End() - 1} {
			bad := bytes.Clone(data)
			bad[at] ^= 4
			br, err := OpenReader(bytes.NewReader(bad), int64(len(bad)))
			if err != nil {
				t.Fatal(err)
			}
			_, err = br.ReadBlock(ref, nil)
			var ce *CorruptionError
			if !errors.As(err, &ce) || ce.Offset != ref.Pos {
				t.Fatalf("block %d flipped at %d: err = %v, want corruption at %d", i, at, err, ref.Pos)
			}
		}
	}
	// Every truncation fails too.
	for n := range len(data) {
		if _, err := OpenReader(bytes.NewReader(data[:n]), int64(n)); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d: err = %v", n, err)
		}
	}
}

func TestReadBlockMismatchedRef(t *testing.T) {
	r, data := gapSegment(t)
	ref := r.Blocks()[1]
	tests := []BlockRef{
		{BlockMeta: ref.BlockMeta, Pos: ref.Pos, Size: ref.Size - 1},
		{BlockMeta: BlockMeta{BaseOffset: 1}, Pos: ref.Pos, Size: ref.Size},
		{BlockMeta: ref.BlockMeta, Pos: ref.Pos + 1, Size: ref.Size},
		{BlockMeta: ref.BlockMeta, Pos: ref.Pos, Size: 3},
		{BlockMeta: ref.BlockMeta, Pos: -1, Size: ref.Size},
	}
	for _, bad := range tests {
		if _, err := r.ReadBlock(bad, nil); !errors.Is(err, ErrCorrupt) {
			t.Errorf("ReadBlock(%+v) err = %v", bad, err)
		}
	}
	// A reader shorter than its claimed size is an I/O error, not damage.
	past := BlockRef{BlockMeta: ref.BlockMeta, Pos: int64(len(data)) - 10, Size: ref.Size}
	if _, err := r.ReadBlock(past, nil); !errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrCorrupt) {
		t.Errorf("read past the end: %v", err)
	}
}

// TestOpenReaderSemanticChecks damages index fields and then recomputes the
// CRCs, so the checks behind the CRCs must catch the damage.
func TestOpenReaderSemanticChecks(t *testing.T) {
	r, data := gapSegment(t)
	refs := r.Blocks()
	indexPos := refs[len(refs)-1].End()
	entry := func(i int) int64 { return indexPos + int64(i)*indexEntrySize }
	timeEntry := func(i int) int64 { return entry(len(refs)) + int64(i)*timeEntrySize }
	trailer := int64(len(data)) - TrailerSize
	be := binary.BigEndian
	tests := []struct {
		name string
		mut  func(b []byte)
	}{
		{"entry position", func(b []byte) { be.PutUint64(b[entry(1):], uint64(refs[1].Pos+1)) }},
		{"entry size", func(b []byte) { be.PutUint32(b[entry(1)+32:], uint32(refs[1].Size+1)) }},
		{"entry size too small", func(b []byte) { be.PutUint32(b[entry(0)+32:], 10) }},
		{"last entry size", func(b []byte) { be.PutUint32(b[entry(3)+32:], uint32(refs[3].Size-1)) }},
		{"overlapping offsets", func(b []byte) { be.PutUint64(b[entry(1)+8:], uint64(refs[0].LastOffset)) }},
		{"last below base", func(b []byte) { be.PutUint64(b[entry(2)+16:], uint64(refs[2].BaseOffset-1)) }},
		{"below segment base", func(b []byte) { be.PutUint64(b[entry(0)+8:], 4) }},
		{"negative batch count", func(b []byte) { be.PutUint32(b[entry(0)+36:], 0xFFFFFFFF) }},
		{"time entry block", func(b []byte) { be.PutUint32(b[timeEntry(1)+8:], 3) }},
		{"time entry out of range", func(b []byte) { be.PutUint32(b[timeEntry(1)+8:], 9) }},
		{"time entry timestamp", func(b []byte) { be.PutUint64(b[timeEntry(0):], 99) }},
		{"first time entry not block 0", func(b []byte) { be.PutUint32(b[timeEntry(0)+8:], 1) }},
		{"indexed max timestamp raised", func(b []byte) { be.PutUint64(b[entry(3)+24:], 301) }},
		{"trailer base offset", func(b []byte) { be.PutUint64(b[trailer+16:], 6) }},
		{"trailer block count", func(b []byte) { be.PutUint32(b[trailer+8:], 5) }},
		{"trailer time count", func(b []byte) { be.PutUint32(b[trailer+12:], 3) }},
		{"trailer index position", func(b []byte) { be.PutUint64(b[trailer:], uint64(indexPos+12)) }},
		{"trailer index position huge", func(b []byte) { be.PutUint64(b[trailer:], 1<<62) }},
		{"trailer version", func(b []byte) { b[trailer+28] = 2 }},
		{"header version", func(b []byte) { b[4] = 2 }},
		{"header reserved", func(b []byte) { b[6] = 1 }},
	}
	for _, tt := range tests {
		bad := bytes.Clone(data)
		tt.mut(bad)
		fixSegmentCRCs(bad)
		if _, err := OpenReader(bytes.NewReader(bad), int64(len(bad))); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v", tt.name, err)
		}
	}
	// The fix-up itself leaves a good segment good.
	good := bytes.Clone(data)
	fixSegmentCRCs(good)
	if _, err := OpenReader(bytes.NewReader(good), int64(len(good))); err != nil {
		t.Fatal(err)
	}
}
