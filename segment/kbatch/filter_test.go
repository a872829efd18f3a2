package kbatch

import (
	"fmt"
	"testing"
)

// TestFilterKeepsOffsetsAndProducerFields: with every codec, filtering
// keeps the chosen records at their offsets with their timestamps, keys,
// values and headers, keeps the batch's base offset, last offset delta and
// producer fields, and writes a correct CRC; dropping every record gives
// nothing, or an empty batch when asked.
func TestFilterKeepsOffsetsAndProducerFields(t *testing.T) {
	for _, codec := range []Codec{None, Gzip, Snappy, LZ4, Zstd} {
		t.Run(codec.String(), func(t *testing.T) {
			recs := make([]Record, 10)
			for i := range recs {
				recs[i] = Record{Timestamp: 1000 + int64(i), Key: []byte(fmt.Sprintf("k%d", i%3)), Value: []byte(fmt.Sprintf("v%d", i)),
					Headers: []RecordHeader{{Key: "h", Value: []byte{byte(i)}}}}
			}
			b, err := Build(recs, BuildOptions{Codec: codec, ProducerID: 7, ProducerEpoch: 2, BaseSequence: 40})
			if err != nil {
				t.Fatal(err)
			}
			SetBaseOffset(b, 500)
			out, err := Filter(b, func(r *Record) bool { return r.Offset%2 == 1 }, false)
			if err != nil {
				t.Fatal(err)
			}
			h := parseHeader(out)
			if checksum(out) != h.CRC {
				t.Fatal("bad CRC")
			}
			if h.BaseOffset != 500 || h.LastOffsetDelta != 9 || h.ProducerID != 7 || h.ProducerEpoch != 2 || h.BaseSequence != 40 || h.Codec() != codec || h.NumRecords != 5 || h.MaxTimestamp != 1009 {
				t.Fatalf("header %+v", h)
			}
			got, err := Records(out)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range got {
				want := 501 + 2*int64(i)
				if r.Offset != want || r.Timestamp != 1000+want-500 || string(r.Value) != fmt.Sprintf("v%d", want-500) || len(r.Headers) != 1 || r.Headers[0].Value[0] != byte(want-500) {
					t.Fatalf("record %d: %+v", i, r)
				}
			}
			if out, err := Filter(b, func(*Record) bool { return false }, false); err != nil || out != nil {
				t.Fatalf("drop all: %d bytes, %v; want nothing", len(out), err)
			}
			empty, err := Filter(b, func(*Record) bool { return false }, true)
			if err != nil {
				t.Fatal(err)
			}
			eh := parseHeader(empty)
			if checksum(empty) != eh.CRC || eh.NumRecords != 0 || eh.LastOffsetDelta != 9 || eh.BaseOffset != 500 {
				t.Fatalf("empty batch header %+v", eh)
			}
			if rs, err := Records(empty); err != nil || len(rs) != 0 {
				t.Fatalf("empty batch records: %v, %v", rs, err)
			}
		})
	}
}
