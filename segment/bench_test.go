package segment

import (
	"testing"
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
