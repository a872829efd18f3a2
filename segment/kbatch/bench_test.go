package kbatch

import (
	"bytes"
	"testing"
)

// benchBatch returns an uncompressed batch of about size bytes made of
// 100-byte values, the shape of a typical produce.
func benchBatch(b *testing.B, size int) []byte {
	b.Helper()
	var recs []Record
	for i := 0; i*120 < size; i++ {
		recs = append(recs, Record{Timestamp: int64(i), Key: []byte("key-0000"), Value: bytes.Repeat([]byte{'v'}, 100)})
	}
	return mustBuild(b, recs, BuildOptions{ProducerID: 1, BaseSequence: 0})
}

func BenchmarkValidate(b *testing.B) {
	batch := benchBatch(b, 16<<10)
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Validate(batch); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateAndRewrite(b *testing.B) {
	batch := benchBatch(b, 16<<10)
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := Validate(batch); err != nil {
			b.Fatal(err)
		}
		SetBaseOffset(batch, int64(i))
		SetPartitionLeaderEpoch(batch, 3)
	}
}

func BenchmarkSetLogAppendTime(b *testing.B) {
	batch := benchBatch(b, 16<<10)
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		SetLogAppendTime(batch, int64(i))
	}
}

func BenchmarkRecords(b *testing.B) {
	for _, c := range allCodecs {
		b.Run(c.String(), func(b *testing.B) {
			raw := benchBatch(b, 16<<10)
			recs, err := Records(raw)
			if err != nil {
				b.Fatal(err)
			}
			batch := mustBuild(b, recs, BuildOptions{Codec: c})
			b.SetBytes(int64(len(raw))) // uncompressed bytes per op
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Records(batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(recs)), "records/op")
		})
	}
}
