package kbatch

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// fuzzSeeds returns valid batches of every codec, with and without a
// producer, plus a xerial snappy one, so the fuzzer starts from real
// structure.
func fuzzSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	recs := sampleRecords(6)
	for _, c := range allCodecs {
		seeds = append(seeds, mustBuild(t, recs, BuildOptions{Codec: c}))
		seeds = append(seeds, mustBuild(t, recs[:1], BuildOptions{Codec: c, ProducerID: 3, BaseSequence: 1}))
	}
	seeds = append(seeds, withPayload(seeds[0], Snappy, xerial(rawRecords(t, recs), 50)))
	return seeds
}

func FuzzValidate(f *testing.F) {
	seeds := fuzzSeeds(f)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Add(append(bytes.Clone(seeds[0]), seeds[3]...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		hs, err := Validate(b)
		if err != nil {
			if hs != nil {
				t.Fatal("headers returned with an error")
			}
			return
		}
		// What Validate accepts must tile the input exactly and satisfy
		// every rule it claims to check.
		off := 0
		for _, h := range hs {
			if h.Magic != 2 || h.NumRecords <= 0 || h.LastOffsetDelta != h.NumRecords-1 || h.IsControl() || h.Codec() > Zstd {
				t.Fatalf("accepted header breaks a rule: %+v", h)
			}
			if h.CRC != checksum(b[off:off+h.Size()]) {
				t.Fatal("accepted a CRC mismatch")
			}
			off += h.Size()
		}
		if off != len(b) {
			t.Fatalf("headers cover %d of %d bytes", off, len(b))
		}
	})
}

func FuzzIterate(f *testing.F) {
	seeds := fuzzSeeds(f)
	for _, s := range seeds {
		f.Add(s)
		f.Add(s[:len(s)/2])
	}
	f.Add(bytes.Join(seeds, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		off := 0
		_ = Iterate(b, func(h Header, batch []byte) error {
			if h.Size() != len(batch) || !bytes.Equal(batch, b[off:off+len(batch)]) {
				t.Fatalf("batch at %d: header size %d, slice %d", off, h.Size(), len(batch))
			}
			off += len(batch)
			// Whatever Iterate yields must be safe to decode.
			_, _ = Records(batch)
			return nil
		})
		if off > len(b) {
			t.Fatalf("walked %d of %d bytes", off, len(b))
		}
	})
}

// FuzzRecords fixes up the length, magic and CRC of the fuzzer's bytes
// before decoding, since a random CRC would stop nearly every input at the
// first check and leave the record decoder and codecs unexplored.
func FuzzRecords(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) >= HeaderSize {
			b = bytes.Clone(b)
			binary.BigEndian.PutUint32(b[offBatchLength:], uint32(len(b)-logOverhead))
			b[offMagic] = 2
			binary.BigEndian.PutUint32(b[offCRC:], checksum(b))
		}
		recs, err := Records(b)
		if err != nil {
			return
		}
		h, _ := ParseHeader(b)
		if len(recs) != int(h.NumRecords) {
			t.Fatalf("%d records, header says %d", len(recs), h.NumRecords)
		}
		// A batch that decodes must survive a round trip through Build.
		if len(recs) > 0 {
			again, err := Build(recs, BuildOptions{Codec: None, BaseTimestamp: h.BaseTimestamp})
			if err != nil {
				t.Fatalf("rebuilding decoded records: %v", err)
			}
			if _, err := Records(again); err != nil {
				t.Fatalf("rebuilt batch does not decode: %v", err)
			}
		}
	})
}
