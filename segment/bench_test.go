package segment

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"
)

const benchPayload = 16 << 10

func BenchmarkAppendBlock(b *testing.B) {
	payload := semiCompressible(newRNG(70), benchPayload)
	meta := BlockMeta{BaseOffset: 1, LastOffset: 100, MaxTimestamp: 1, BatchCount: 10}
	dst := AppendBlock(nil, meta, payload)
	b.SetBytes(benchPayload)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		dst = AppendBlock(dst[:0], meta, payload)
	}
	b.ReportMetric(float64(benchPayload)/float64(len(dst)), "ratio")
}

func BenchmarkDecodeBlock(b *testing.B) {
	payload := semiCompressible(newRNG(70), benchPayload)
	blk := AppendBlock(nil, BlockMeta{BaseOffset: 1, LastOffset: 100, MaxTimestamp: 1, BatchCount: 10}, payload)
	dst := make([]byte, 0, benchPayload)
	b.SetBytes(benchPayload)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		var err error
		if _, dst, _, err = DecodeBlock(dst[:0], blk); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriterAppend writes 16 KiB raw blocks to a local segment file
// (the hot tier's write path, without fsync: the flush makes data durable).
func BenchmarkWriterAppend(b *testing.B) {
	payload := semiCompressible(newRNG(71), benchPayload)
	w, err := Create(filepath.Join(b.TempDir(), "seg"), 0)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	b.SetBytes(benchPayload)
	b.ReportAllocs()
	off := int64(0)
	for b.Loop() {
		blk := AppendRawBlock(nil, BlockMeta{BaseOffset: off, LastOffset: off + 99, MaxTimestamp: 1, BatchCount: 1}, payload)
		if _, err := w.Append(blk); err != nil {
			b.Fatal(err)
		}
		off += 100
	}
}

// BenchmarkReaderReadBlock reads and decodes zstd blocks back from an
// encoded segment object (the cold read path once an object is local).
func BenchmarkReaderReadBlock(b *testing.B) {
	payload := semiCompressible(newRNG(72), benchPayload)
	var blocks [][]byte
	for i := int64(0); i < 64; i++ {
		blocks = append(blocks, AppendBlock(nil, BlockMeta{BaseOffset: i * 100, LastOffset: i*100 + 99, MaxTimestamp: 1, BatchCount: 1}, payload))
	}
	obj, err := Encode(0, blocks)
	if err != nil {
		b.Fatal(err)
	}
	r, err := OpenReader(bytes.NewReader(obj), int64(len(obj)))
	if err != nil {
		b.Fatal(err)
	}
	refs := r.Blocks()
	var dst []byte
	b.SetBytes(benchPayload)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if dst, err = r.ReadBlock(refs[i%len(refs)], dst[:0]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkFlushObjectBuild frames 6 partitions' pending raw blocks
// (4 MiB in 64 KiB blocks) into one flush object, as the flusher does.
func BenchmarkFlushObjectBuild(b *testing.B) {
	payload := semiCompressible(newRNG(73), 64<<10)
	const parts, perPart = 6, 11
	runs := make([][][]byte, parts)
	total := 0
	for p := range runs {
		for i := int64(0); i < perPart; i++ {
			blk := AppendRawBlock(nil, BlockMeta{BaseOffset: i * 100, LastOffset: i*100 + 99, MaxTimestamp: 1, BatchCount: 1}, payload)
			runs[p] = append(runs[p], blk)
			total += len(blk)
		}
	}
	b.SetBytes(int64(total))
	b.ReportAllocs()
	for b.Loop() {
		fb := NewFlushObjectBuilder(1, time.UnixMilli(1))
		fb.Grow(total + parts*FlushDirEntrySize + 64)
		for p, blocks := range runs {
			if _, err := fb.AddRun(RunKey{Partition: int32(p)}, blocks); err != nil {
				b.Fatal(err)
			}
		}
		if len(fb.Finish()) < total {
			b.Fatal("short object")
		}
	}
}
