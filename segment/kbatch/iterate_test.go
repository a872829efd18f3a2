package kbatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestIterate(t *testing.T) {
	recs := sampleRecords(5)
	var batches [][]byte
	for i, c := range allCodecs {
		b := mustBuild(t, recs, BuildOptions{Codec: c})
		SetBaseOffset(b, int64(i*5))
		batches = append(batches, b)
	}
	// A control batch, as a broker writes for a transaction marker, is
	// something a reader must walk past.
	batches = append(batches, edit(batches[0], true, func(b []byte) { b[offAttributes+1] |= attrControl }))
	all := bytes.Join(batches, nil)

	type seen struct {
		h     Header
		batch []byte
	}
	walk := func(in []byte) ([]seen, error) {
		var got []seen
		err := Iterate(in, func(h Header, batch []byte) error {
			got = append(got, seen{h, batch})
			return nil
		})
		return got, err
	}

	got, err := walk(all)
	if err != nil || len(got) != len(batches) {
		t.Fatalf("whole input: %d batches, %v", len(got), err)
	}
	for i, s := range got {
		if !bytes.Equal(s.batch, batches[i]) || s.h.Size() != len(s.batch) || cap(s.batch) != len(s.batch) {
			t.Fatalf("batch %d: wrong bytes or capacity", i)
		}
		if s.h.BaseOffset != int64(i*5) && i < len(allCodecs) {
			t.Fatalf("batch %d: base offset %d", i, s.h.BaseOffset)
		}
	}

	// Every cut point inside the input must yield the whole batches before
	// it and stop quietly, as a fetch response cut at max bytes does.
	ends := []int{0}
	for _, b := range batches {
		ends = append(ends, ends[len(ends)-1]+len(b))
	}
	for cut := 0; cut <= len(all); cut++ {
		whole := 0
		for whole+1 < len(ends) && ends[whole+1] <= cut {
			whole++
		}
		got, err := walk(all[:cut])
		if err != nil || len(got) != whole {
			t.Fatalf("cut at %d: %d batches, %v; want %d, nil", cut, len(got), err, whole)
		}
	}
}

func TestIterateErrors(t *testing.T) {
	good := mustBuild(t, sampleRecords(3), BuildOptions{Codec: Gzip})
	tests := []struct {
		name   string
		input  []byte
		want   error
		before int // whole batches fn sees before the error
	}{
		{"bad crc", edit(good, false, func(b []byte) { b[len(b)-3] ^= 1 }), ErrCorrupt, 0},
		{"bad crc second", append(bytes.Clone(good), edit(good, false, func(b []byte) { b[HeaderSize] ^= 1 })...), ErrCorrupt, 1},
		{"negative length", edit(good, false, func(b []byte) { b[offBatchLength] = 0xff }), ErrCorrupt, 0},
		{"length below header", edit(good, false, func(b []byte) { b[offBatchLength+3] = 30; b[offBatchLength+2] = 0 }), ErrCorrupt, 0},
		{"magic 1", edit(good, true, func(b []byte) { b[offMagic] = 1 }), ErrUnsupportedMagic, 0},
		{"magic 9", edit(good, true, func(b []byte) { b[offMagic] = 9 }), ErrCorrupt, 0},
		{"codec 5", edit(good, true, func(b []byte) { b[offAttributes+1] |= 5 }), ErrUnsupportedCodec, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := 0
			err := Iterate(tt.input, func(Header, []byte) error { n++; return nil })
			if !errors.Is(err, tt.want) || n != tt.before {
				t.Fatalf("got %v after %d batches, want %v after %d", err, n, tt.want, tt.before)
			}
			// IterateStored skips the CRC pass only: a damaged CRC walks
			// through, every framing error still stops it.
			n = 0
			err = IterateStored(tt.input, func(Header, []byte) error { n++; return nil })
			if strings.HasPrefix(tt.name, "bad crc") {
				if err != nil || n != len(tt.input)/len(good) {
					t.Fatalf("IterateStored: got %v after %d batches, want no error after %d", err, n, len(tt.input)/len(good))
				}
			} else if !errors.Is(err, tt.want) || n != tt.before {
				t.Fatalf("IterateStored: got %v after %d batches, want %v after %d", err, n, tt.want, tt.before)
			}
		})
	}

	stop := errors.New("stop")
	n := 0
	err := Iterate(bytes.Repeat(good, 3), func(Header, []byte) error { n++; return stop })
	if err != stop || n != 1 {
		t.Fatalf("fn error: got %v after %d calls, want it returned as is after 1", err, n)
	}
	if err := Iterate(nil, func(Header, []byte) error { t.Fatal("called on empty input"); return nil }); err != nil {
		t.Fatal(err)
	}
}

// TestRecordsConcurrent decodes from several goroutines at once, which
// shares the pooled decoders; run under -race it checks they are never
// shared by two calls.
func TestRecordsConcurrent(t *testing.T) {
	recs := sampleRecords(20)
	var batches [][]byte
	for _, c := range allCodecs {
		batches = append(batches, mustBuild(t, recs, BuildOptions{Codec: c}))
	}
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			for i := range 50 {
				got, err := Records(batches[(g+i)%len(batches)])
				if err == nil && len(got) != len(recs) {
					err = errors.New("wrong record count")
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// oneRecord builds a records section holding one record whose body is the
// concatenation of fields, each a raw byte string or a zigzag varint.
func oneRecord(fields ...any) []byte {
	var body []byte
	for _, f := range fields {
		switch f := f.(type) {
		case int:
			body = binary.AppendVarint(body, int64(f))
		case []byte:
			body = append(body, f...)
		}
	}
	return append(binary.AppendVarint(nil, int64(len(body))), body...)
}

func TestRecordsRejectsMalformedRecord(t *testing.T) {
	base := mustBuild(t, sampleRecords(1), BuildOptions{})
	attr := []byte{0}
	pad := []byte("padding") // keeps the section above the 7-byte minimum
	tests := []struct {
		name    string
		section []byte
	}{
		{"key length -2", oneRecord(attr, 0, 0, -2, pad)},
		{"key longer than record", oneRecord(attr, 0, 0, 100, pad)},
		{"offset delta overflows int32", oneRecord(attr, 0, 1<<40, -1, -1, 0)},
		{"unterminated varint", append([]byte{0x10}, bytes.Repeat([]byte{0xff}, 16)...)},
		{"negative record length", append(binary.AppendVarint(nil, -5), pad...)},
		{"negative header count", oneRecord(attr, 0, 0, -1, -1, -1, pad)},
		{"header count past end", oneRecord(attr, 0, 0, -1, -1, 50, pad)},
		{"header value past end", oneRecord(attr, 0, 0, -1, -1, 1, 1, []byte("k"), 40)},
		{"bytes left in record", oneRecord(attr, 0, 0, -1, -1, 0, pad)},
		{"record cut short", oneRecord(attr, 0, 0, -1)},
		{"empty record", oneRecord(pad)[:1]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			section := tt.section
			for len(section) < minRecordSize {
				section = append(section, 0)
			}
			if _, err := Records(withPayload(base, None, section)); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("got %v, want ErrCorrupt", err)
			}
		})
	}
	// The same framing with sane fields decodes, so the cases above fail
	// for the reason their names give.
	ok := oneRecord(attr, 3, 0, 1, []byte("k"), -1, 1, 1, []byte("h"), -1)
	got, err := Records(withPayload(base, None, ok))
	if err != nil || len(got) != 1 || string(got[0].Key) != "k" || got[0].Value != nil || got[0].Headers[0].Key != "h" || got[0].Headers[0].Value != nil {
		t.Fatalf("well-formed record: %+v, %v", got, err)
	}
}

func TestErrorMessage(t *testing.T) {
	good := mustBuild(t, sampleRecords(1), BuildOptions{})
	_, err := Validate(append(bytes.Clone(good), 1, 2, 3))
	want := "kbatch: corrupt record batch: at byte " + strconv.Itoa(len(good)) + ": 3 bytes left cannot hold a batch"
	if err == nil || err.Error() != want {
		t.Fatalf("got %q, want %q", err, want)
	}
}
