package segment

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Seeds shared by the fuzzers: valid structures of every kind, so mutations
// start from bytes that pass the magic and CRC checks.
func seedBlocks() [][]byte {
	rng := newRNG(60)
	return [][]byte{
		AppendBlock(nil, BlockMeta{BaseOffset: 0, LastOffset: 0, MaxTimestamp: 1, BatchCount: 1}, nil),
		AppendBlock(nil, BlockMeta{BaseOffset: 5, LastOffset: 9, MaxTimestamp: -1, BatchCount: 2}, []byte("tiny raw payload")),
		AppendBlock(nil, BlockMeta{BaseOffset: 10, LastOffset: 99, MaxTimestamp: 1e12, BatchCount: 3}, semiCompressible(rng, 2000)),
		AppendBlock(nil, BlockMeta{BaseOffset: 100, LastOffset: 100, MaxTimestamp: 7, BatchCount: 1}, incompressible(rng, 700)),
	}
}

// The fix* helpers recompute the CRCs in mutated input (best effort), so the
// fuzzers also explore the checks behind the CRCs instead of stopping at
// them.

func fixBlockCRCs(b []byte) {
	if len(b) < BlockHeaderSize {
		return
	}
	be := binary.BigEndian
	if stored := int(be.Uint32(b[40:])); stored <= len(b)-BlockHeaderSize {
		be.PutUint32(b[44:], crc(b[BlockHeaderSize:BlockHeaderSize+stored]))
	}
	be.PutUint32(b[48:], crc(b[:48]))
}

func fixSegmentCRCs(b []byte) {
	if len(b) < FileHeaderSize+TrailerSize {
		return
	}
	be := binary.BigEndian
	be.PutUint32(b[16:], crc(b[:16]))
	tr := b[len(b)-TrailerSize:]
	if pos := be.Uint64(tr); pos >= FileHeaderSize && pos <= uint64(len(b)-TrailerSize) {
		be.PutUint32(tr[24:], crc(b[pos:len(b)-TrailerSize]))
	}
	be.PutUint32(tr[32:], crc(tr[:32]))
}

func fixFlushCRCs(b []byte) {
	if len(b) < FlushHeaderSize+FlushTrailerSize {
		return
	}
	be := binary.BigEndian
	be.PutUint32(b[20:], crc(b[:20]))
	tr := b[len(b)-FlushTrailerSize:]
	if pos := be.Uint64(tr); pos >= FlushHeaderSize && pos <= uint64(len(b)-FlushTrailerSize) {
		be.PutUint32(tr[12:], crc(b[pos:len(b)-FlushTrailerSize]))
	}
	be.PutUint32(tr[20:], crc(tr[:20]))
}

func FuzzDecodeBlock(f *testing.F) {
	for _, b := range seedBlocks() {
		f.Add(b, false)
		f.Add(b, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, fix bool) {
		if fix {
			fixBlockCRCs(data)
		}
		pm, pn, perr := PeekBlock(data)
		meta, out, n, err := DecodeBlock([]byte("dst"), data)
		if err != nil {
			if !bytes.Equal(out, []byte("dst")) {
				t.Fatal("failed DecodeBlock changed dst")
			}
			return
		}
		if perr != nil || pm != meta || pn != n || n > len(data) {
			t.Fatalf("PeekBlock = %+v %d %v disagrees with DecodeBlock %+v %d", pm, pn, perr, meta, n)
		}
		batches := out[3:]
		if len(batches) > MaxBlockSize {
			t.Fatalf("decoded %d bytes", len(batches))
		}
		_, again, _, err := DecodeBlock(nil, AppendBlock(nil, meta, batches))
		if err != nil || !bytes.Equal(again, batches) {
			t.Fatalf("re-encoded block does not round trip: %v", err)
		}
	})
}

func FuzzOpenReader(f *testing.F) {
	blocks := seedBlocks()
	for _, set := range [][][]byte{nil, blocks[:1], blocks} {
		seg, err := Encode(0, set)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(seg, false)
		f.Add(seg, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, fix bool) {
		if fix {
			fixSegmentCRCs(data)
		}
		r, err := OpenReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		refs := r.Blocks()
		for i, ref := range refs {
			if ref.End() > int64(len(data)) {
				t.Fatalf("block %d ends at %d of %d", i, ref.End(), len(data))
			}
			if got, ok := r.FindOffset(ref.BaseOffset); !ok || got != ref {
				t.Fatalf("FindOffset(%d) = %+v, %v; want block %d", ref.BaseOffset, got, ok, i)
			}
			if got, ok := r.FindTimestamp(ref.MaxTimestamp); !ok || got.Pos > ref.Pos || got.MaxTimestamp < ref.MaxTimestamp {
				t.Fatalf("FindTimestamp(%d) = %+v, %v; block %d has it", ref.MaxTimestamp, got, ok, i)
			}
			_, _ = r.ReadBlock(ref, nil)
		}
	})
}

func FuzzParseFlushObject(f *testing.F) {
	blocks := seedBlocks()
	f.Add(NewFlushObjectBuilder(1, time.UnixMilli(0)).Finish(), false)
	b := NewFlushObjectBuilder(2, time.UnixMilli(1e12))
	if _, err := b.AddRun(RunKey{Partition: 1}, blocks[:2]); err != nil {
		f.Fatal(err)
	}
	if _, err := b.AddRun(RunKey{TopicID: [16]byte{1}, Partition: 0}, blocks[2:]); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Finish(), false)
	f.Add(b.Finish(), true)
	f.Fuzz(func(t *testing.T, data []byte, fix bool) {
		if fix {
			fixFlushCRCs(data)
		}
		_, _, _ = FlushObjectHeader(data)
		runs, err := ParseFlushObject(data)
		if err != nil {
			return
		}
		for i, r := range runs {
			if r.Pos < FlushHeaderSize || r.Pos+r.Size > int64(len(data)) {
				t.Fatalf("run %d at [%d, %d) outside the object", i, r.Pos, r.Pos+r.Size)
			}
			_, metas, err := DecodeRun(nil, data[r.Pos:r.Pos+r.Size])
			if err == nil && (len(metas) == 0 || metas[0].BaseOffset < 0) {
				t.Fatalf("run %d decoded to %+v", i, metas)
			}
		}
	})
}

func FuzzRecover(f *testing.F) {
	blocks := seedBlocks()
	seg, err := Encode(0, blocks)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seg, false)
	f.Add(seg, true)
	unsealed := appendFileHeader(nil, 0)
	for _, b := range blocks {
		unsealed = append(unsealed, b...)
	}
	f.Add(unsealed, false)
	f.Add(unsealed[:len(unsealed)-5], false)
	f.Fuzz(func(t *testing.T, data []byte, fix bool) {
		if fix {
			fixSegmentCRCs(data)
		}
		path := filepath.Join(t.TempDir(), "seg")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		w, sealed, err := Recover(path)
		if err != nil {
			return
		}
		defer w.Close()
		fh, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		refs := w.Blocks()
		pos := int64(FileHeaderSize)
		for i, ref := range refs {
			if ref.Pos != pos {
				t.Fatalf("block %d at %d, want %d", i, ref.Pos, pos)
			}
			// Recover verified unsealed blocks, so they must read back.
			if _, err := ReadBlockAt(fh, ref, nil); err != nil && !sealed {
				t.Fatalf("recovered block %d unreadable: %v", i, err)
			}
			pos = ref.End()
		}
		if sealed {
			return
		}
		if st, err := os.Stat(path); err != nil || st.Size() != pos || w.Size() != pos {
			t.Fatalf("recovered file is not cut at the last good block (%d)", pos)
		}
		next := w.BaseOffset()
		if len(refs) > 0 {
			next = refs[len(refs)-1].LastOffset + 1
		}
		if next < 0 { // LastOffset was MaxInt64
			return
		}
		if _, err := w.Append(AppendBlock(nil, BlockMeta{BaseOffset: next, LastOffset: next}, []byte("x"))); err != nil {
			t.Fatalf("append after recovery: %v", err)
		}
		if err := w.Seal(); err != nil {
			t.Fatal(err)
		}
		sealedData, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		r, err := OpenReader(bytes.NewReader(sealedData), int64(len(sealedData)))
		if err != nil || len(r.Blocks()) != len(refs)+1 {
			t.Fatalf("resealed segment: %v", err)
		}
	})
}
