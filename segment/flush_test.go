package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

func TestFlushObjectRoundTrip(t *testing.T) {
	rng := newRNG(50)
	created := time.UnixMilli(1_763_000_000_123)
	b := NewFlushObjectBuilder(3, created)

	type run struct {
		key    RunKey
		blocks []testBlock
	}
	var runs []run
	for i := range 7 {
		key := RunKey{TopicID: [16]byte{byte(i / 3), 0xAB, 15: byte(i)}, Partition: int32(i % 3)}
		runs = append(runs, run{key: key, blocks: makeBlocks(t, rng, int64(100*i), 1+i%4)})
	}
	var added []Run
	for _, r := range runs {
		got, err := b.AddRun(r.key, encoded(r.blocks))
		if err != nil {
			t.Fatal(err)
		}
		maxTS := r.blocks[0].meta.MaxTimestamp
		for _, blk := range r.blocks {
			maxTS = max(maxTS, blk.meta.MaxTimestamp)
		}
		if got.RunKey != r.key || got.BaseOffset != r.blocks[0].meta.BaseOffset ||
			got.LastOffset != r.blocks[len(r.blocks)-1].meta.LastOffset ||
			got.MaxTimestamp != maxTS || got.Blocks != int32(len(r.blocks)) {
			t.Fatalf("AddRun = %+v", got)
		}
		added = append(added, got)
	}
	if len(b.Runs()) != len(runs) {
		t.Fatalf("Runs() has %d runs", len(b.Runs()))
	}
	size := b.Size()
	obj := b.Finish()
	if !bytes.Equal(b.Finish(), obj) || len(obj) != size+len(runs)*runEntrySize+FlushTrailerSize {
		t.Fatal("Finish is not stable or has the wrong size")
	}
	if _, err := b.AddRun(runs[0].key, encoded(runs[0].blocks)); err == nil {
		t.Fatal("AddRun after Finish succeeded")
	}

	node, at, err := FlushObjectHeader(obj)
	if err != nil || node != 3 || !at.Equal(created) {
		t.Fatalf("FlushObjectHeader = %d, %v, %v", node, at, err)
	}
	parsed, err := ParseFlushObject(obj)
	if err != nil {
		t.Fatal(err)
	}
	if len(parsed) != len(added) {
		t.Fatalf("%d runs parsed, %d added", len(parsed), len(added))
	}
	for i, p := range parsed {
		if p != added[i] {
			t.Fatalf("run %d: parsed %+v, added %+v", i, p, added[i])
		}
		out, metas, err := DecodeRun([]byte("x"), obj[p.Pos:p.Pos+p.Size])
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		want := []byte("x")
		for j, blk := range runs[i].blocks {
			want = append(want, blk.payload...)
			if metas[j] != blk.meta {
				t.Fatalf("run %d block %d: meta %+v, want %+v", i, j, metas[j], blk.meta)
			}
		}
		if len(metas) != len(runs[i].blocks) || !bytes.Equal(out, want) {
			t.Fatalf("run %d: decoded %d blocks / %d bytes", i, len(metas), len(out))
		}
	}
}

func TestFlushObjectEmpty(t *testing.T) {
	obj := NewFlushObjectBuilder(-1, time.UnixMilli(0)).Finish()
	runs, err := ParseFlushObject(obj)
	if err != nil || len(runs) != 0 {
		t.Fatalf("ParseFlushObject = %v, %v", runs, err)
	}
	if node, _, err := FlushObjectHeader(obj); err != nil || node != -1 {
		t.Fatalf("FlushObjectHeader = %d, %v", node, err)
	}
}

func TestAddRunChecks(t *testing.T) {
	a := AppendBlock(nil, BlockMeta{BaseOffset: 10, LastOffset: 20}, []byte("a"))
	c := AppendBlock(nil, BlockMeta{BaseOffset: 21, LastOffset: 22}, []byte("c"))
	bad := bytes.Clone(c)
	bad[len(bad)-1] ^= 1
	b := NewFlushObjectBuilder(1, time.Now())
	before := b.Size()
	tests := []struct {
		name   string
		key    RunKey
		blocks [][]byte
		want   error
	}{
		{"no blocks", RunKey{}, nil, nil},
		{"negative partition", RunKey{Partition: -1}, [][]byte{a}, nil},
		{"out of order", RunKey{}, [][]byte{c, a}, ErrOffsetOrder},
		{"repeated", RunKey{}, [][]byte{a, a}, ErrOffsetOrder},
		{"payload crc", RunKey{}, [][]byte{a, bad}, ErrCorrupt},
		{"two blocks in one slice", RunKey{}, [][]byte{append(bytes.Clone(a), c...)}, ErrCorrupt},
	}
	for _, tt := range tests {
		_, err := b.AddRun(tt.key, tt.blocks)
		if err == nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
		if b.Size() != before || len(b.Runs()) != 0 {
			t.Fatalf("%s: failed AddRun changed the builder", tt.name)
		}
	}
	if _, err := b.AddRun(RunKey{}, [][]byte{a, c}); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseFlushObject(b.Finish()); err != nil {
		t.Fatal(err)
	}
}

func TestFlushObjectCorruption(t *testing.T) {
	b := NewFlushObjectBuilder(9, time.UnixMilli(5))
	for p := range 3 {
		blk := AppendBlock(nil, BlockMeta{BaseOffset: int64(p), LastOffset: int64(p + 1)}, []byte("payload"))
		if _, err := b.AddRun(RunKey{Partition: int32(p)}, [][]byte{blk}); err != nil {
			t.Fatal(err)
		}
	}
	obj := b.Finish()
	runs, err := ParseFlushObject(obj)
	if err != nil {
		t.Fatal(err)
	}
	runsEnd := runs[len(runs)-1].Pos + runs[len(runs)-1].Size
	for bit := range len(obj) * 8 {
		at := int64(bit / 8)
		bad := bytes.Clone(obj)
		bad[at] ^= 1 << (bit % 8)
		if at >= FlushHeaderSize && at < runsEnd {
			// Damage inside a run is found when the run is decoded.
			for _, r := range runs {
				if at >= r.Pos && at < r.Pos+r.Size {
					if _, _, err := DecodeRun(nil, bad[r.Pos:r.Pos+r.Size]); !errors.Is(err, ErrCorrupt) {
						t.Fatalf("bit %d: DecodeRun err = %v", bit, err)
					}
				}
			}
			continue
		}
		if _, err := ParseFlushObject(bad); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("bit %d flipped at byte %d: err = %v", bit, at, err)
		}
	}
	for n := range len(obj) {
		if _, err := ParseFlushObject(obj[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d: err = %v", n, err)
		}
	}
	if _, _, err := DecodeRun(nil, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("DecodeRun of nothing: %v", err)
	}
	// Blocks of a run out of order are rejected.
	x := AppendBlock(nil, BlockMeta{BaseOffset: 5, LastOffset: 5}, nil)
	y := AppendBlock(nil, BlockMeta{BaseOffset: 4, LastOffset: 4}, nil)
	if _, _, err := DecodeRun(nil, append(x, y...)); !errors.Is(err, ErrOffsetOrder) {
		t.Fatalf("DecodeRun out of order: %v", err)
	}
}

// TestParseFlushObjectSemanticChecks damages directory fields and then
// recomputes the CRCs, so the checks behind the CRCs must catch the damage.
func TestParseFlushObjectSemanticChecks(t *testing.T) {
	b := NewFlushObjectBuilder(9, time.UnixMilli(5))
	for p := range 2 {
		blk := AppendBlock(nil, BlockMeta{BaseOffset: 10, LastOffset: 20}, []byte("payload"))
		if _, err := b.AddRun(RunKey{Partition: int32(p)}, [][]byte{blk, AppendBlock(nil, BlockMeta{BaseOffset: 21, LastOffset: 21}, nil)}); err != nil {
			t.Fatal(err)
		}
	}
	obj := b.Finish()
	runs, err := ParseFlushObject(obj)
	if err != nil {
		t.Fatal(err)
	}
	dirPos := runs[1].Pos + runs[1].Size
	entry := func(i int) int64 { return dirPos + int64(i)*runEntrySize }
	trailer := int64(len(obj)) - FlushTrailerSize
	be := binary.BigEndian
	tests := []struct {
		name string
		mut  func(b []byte)
	}{
		{"negative partition", func(b []byte) { be.PutUint32(b[entry(0)+16:], 0xFFFFFFFF) }},
		{"negative base offset", func(b []byte) { be.PutUint64(b[entry(0)+20:], 1<<63) }},
		{"last below base", func(b []byte) { be.PutUint64(b[entry(1)+28:], 9) }},
		{"position", func(b []byte) { be.PutUint64(b[entry(1)+44:], uint64(runs[1].Pos+1)) }},
		{"size", func(b []byte) { be.PutUint64(b[entry(0)+52:], uint64(runs[0].Size-1)) }},
		{"size huge", func(b []byte) { be.PutUint64(b[entry(1)+52:], 1<<62) }},
		{"zero blocks", func(b []byte) { be.PutUint32(b[entry(0)+60:], 0) }},
		{"too many blocks for size", func(b []byte) { be.PutUint32(b[entry(0)+60:], 1000) }},
		{"run count", func(b []byte) { be.PutUint32(b[trailer+8:], 3) }},
		{"directory position", func(b []byte) { be.PutUint64(b[trailer:], uint64(dirPos-64)) }},
		{"trailer version", func(b []byte) { b[trailer+16] = 2 }},
		{"header version", func(b []byte) { b[4] = 2 }},
	}
	for _, tt := range tests {
		bad := bytes.Clone(obj)
		tt.mut(bad)
		fixFlushCRCs(bad)
		if _, err := ParseFlushObject(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v", tt.name, err)
		}
	}
	good := bytes.Clone(obj)
	fixFlushCRCs(good)
	if _, err := ParseFlushObject(good); err != nil {
		t.Fatal(err)
	}
}
