package kbatch

import (
	"errors"
	"testing"
)

// TestRecordsBoundsDecompression feeds each codec a payload that inflates to
// just over MaxUncompressed and expects ErrTooLarge, not an allocation of
// whatever the data asks for.
func TestRecordsBoundsDecompression(t *testing.T) {
	if testing.Short() {
		t.Skip("compresses 64 MiB per codec")
	}
	zeros := make([]byte, MaxUncompressed+1)
	base := mustBuild(t, sampleRecords(1), BuildOptions{})
	for _, c := range allCodecs[1:] {
		t.Run(c.String(), func(t *testing.T) {
			payload, err := compress(c, zeros)
			if err != nil {
				t.Fatal(err)
			}
			b := withPayload(base, c, payload)
			if _, err := Validate(b); err != nil {
				t.Fatalf("Validate must not decompress, yet failed: %v", err)
			}
			if _, err := Records(b); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("got %v, want ErrTooLarge", err)
			}
		})
	}
	t.Run("xerial", func(t *testing.T) {
		b := withPayload(base, Snappy, xerial(zeros, 1<<20))
		if _, err := Records(b); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("got %v, want ErrTooLarge", err)
		}
	})
}

// TestRecordsAtLimit checks the bound is not off by one the other way: data
// of exactly MaxUncompressed bytes decodes.
func TestRecordsAtLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 64 MiB batch")
	}
	// One record whose encoding is exactly MaxUncompressed bytes: the value
	// length leaves room for the record's own framing.
	overhead := len(rawRecords(t, []Record{{Value: make([]byte, MaxUncompressed-20)}})) - (MaxUncompressed - 20)
	rec := Record{Value: make([]byte, MaxUncompressed-overhead)}
	b := mustBuild(t, []Record{rec}, BuildOptions{Codec: Zstd})
	if raw := rawRecords(t, []Record{rec}); len(raw) != MaxUncompressed {
		t.Fatalf("test setup: records are %d bytes, want %d", len(raw), MaxUncompressed)
	}
	got, err := Records(b)
	if err != nil || len(got) != 1 || len(got[0].Value) != len(rec.Value) {
		t.Fatalf("got %d records, %v", len(got), err)
	}
}
