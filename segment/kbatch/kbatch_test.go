package kbatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/klauspost/compress/s2"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The zstd decoder pool must not leave goroutines behind; only the
	// kfake test starts any, and it closes them.
	goleak.VerifyTestMain(m)
}

var allCodecs = []Codec{None, Gzip, Snappy, LZ4, Zstd}

// sampleRecords returns n records that exercise every encoding corner: null
// and empty keys and values, headers with null and empty values, and
// timestamps that go backwards as well as forwards.
func sampleRecords(n int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		r := Record{
			Timestamp: 1_700_000_000_000 + int64(i*37%11) - 5,
			Key:       fmt.Appendf(nil, "key-%d", i),
			Value:     bytes.Repeat([]byte{byte('a' + i%26)}, 10+i%40),
		}
		switch i % 5 {
		case 0:
			r.Key = nil
		case 1:
			r.Key = []byte{}
			r.Headers = []RecordHeader{{Key: "trace", Value: []byte("abc")}, {Key: "null", Value: nil}}
		case 2:
			r.Value = nil
			r.Headers = []RecordHeader{{Key: "", Value: []byte{}}}
		case 3:
			r.Value = []byte{}
		}
		recs[i] = r
	}
	return recs
}

// withOffsets returns a copy of recs with Offset set to base+i, which is what
// Records reports for a batch Build made.
func withOffsets(recs []Record, base int64) []Record {
	out := append([]Record(nil), recs...)
	for i := range out {
		out[i].Offset = base + int64(i)
	}
	return out
}

func mustBuild(t testing.TB, recs []Record, opts BuildOptions) []byte {
	t.Helper()
	b, err := Build(recs, opts)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return b
}

// edit returns a copy of batch changed by fn, with the CRC recomputed when
// fixCRC is set, so a test can break exactly one rule.
func edit(batch []byte, fixCRC bool, fn func(b []byte)) []byte {
	b := bytes.Clone(batch)
	fn(b)
	if fixCRC {
		binary.BigEndian.PutUint32(b[offCRC:], checksum(b))
	}
	return b
}

// withPayload replaces a batch's records section with payload under codec c
// and fixes the length and CRC: how tests make batches with encodings Build
// does not produce.
func withPayload(batch []byte, c Codec, payload []byte) []byte {
	b := append(bytes.Clone(batch[:HeaderSize]), payload...)
	binary.BigEndian.PutUint32(b[offBatchLength:], uint32(len(b)-logOverhead))
	attrs := binary.BigEndian.Uint16(b[offAttributes:])&^attrCodecMask | uint16(c)
	binary.BigEndian.PutUint16(b[offAttributes:], attrs)
	binary.BigEndian.PutUint32(b[offCRC:], checksum(b))
	return b
}

// rawRecords returns the uncompressed records section of recs.
func rawRecords(t testing.TB, recs []Record) []byte {
	t.Helper()
	b := mustBuild(t, recs, BuildOptions{})
	return b[HeaderSize:]
}

// xerial frames data the way snappy-java's SnappyOutputStream does, in
// chunks of at most chunk bytes.
func xerial(data []byte, chunk int) []byte {
	out := append([]byte{}, xerialMagic...)
	out = binary.BigEndian.AppendUint32(out, 1)
	out = binary.BigEndian.AppendUint32(out, 1)
	for len(data) > 0 {
		n := min(chunk, len(data))
		block := s2.EncodeSnappy(nil, data[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(len(block)))
		out = append(out, block...)
		data = data[n:]
	}
	return out
}

func TestParseHeader(t *testing.T) {
	b := mustBuild(t, sampleRecords(3), BuildOptions{Codec: LZ4, ProducerID: 42, ProducerEpoch: 3, BaseSequence: 17, BaseTimestamp: 1000})
	h, err := ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	want := Header{
		BaseOffset: 0, BatchLength: int32(len(b) - 12), PartitionLeaderEpoch: -1, Magic: 2,
		CRC: checksum(b), Attributes: int16(LZ4), LastOffsetDelta: 2, BaseTimestamp: 1000,
		MaxTimestamp: 1_700_000_000_000 + 8 - 5, // the largest of offsets 0, 4 and 8 (see sampleRecords)
		ProducerID:   42, ProducerEpoch: 3, BaseSequence: 17, NumRecords: 3,
	}
	if h != want {
		t.Fatalf("header\n got %+v\nwant %+v", h, want)
	}
	if h.Codec() != LZ4 || h.IsTransactional() || h.IsControl() || h.LogAppendTime() || h.LastOffset() != 2 || h.Size() != len(b) {
		t.Fatalf("accessors wrong for %+v", h)
	}
	if _, err := ParseHeader(b[:HeaderSize-1]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("short header: got %v, want ErrCorrupt", err)
	}
}

func TestHeaderAttributes(t *testing.T) {
	h := Header{Attributes: 0x10 | 0x20 | 0x08 | int16(Zstd), BaseOffset: 100, LastOffsetDelta: 9, BatchLength: 49}
	if !h.IsTransactional() || !h.IsControl() || !h.LogAppendTime() || h.Codec() != Zstd {
		t.Fatalf("attribute accessors wrong for %#x", h.Attributes)
	}
	if h.LastOffset() != 109 || h.Size() != HeaderSize {
		t.Fatalf("LastOffset %d Size %d", h.LastOffset(), h.Size())
	}
	for c, name := range map[Codec]string{None: "none", Gzip: "gzip", Snappy: "snappy", LZ4: "lz4", Zstd: "zstd", 6: "codec(6)"} {
		if c.String() != name {
			t.Errorf("Codec(%d).String() = %q, want %q", c, c.String(), name)
		}
	}
}

func TestBuildValidateRecordsRoundTrip(t *testing.T) {
	recs := sampleRecords(50)
	for _, c := range allCodecs {
		for _, opts := range []BuildOptions{
			{Codec: c},
			{Codec: c, ProducerID: 9, ProducerEpoch: 2, BaseSequence: 100},
			{Codec: c, BaseTimestamp: 5},
		} {
			t.Run(fmt.Sprintf("%s/pid%d/ts%d", c, opts.ProducerID, opts.BaseTimestamp), func(t *testing.T) {
				b := mustBuild(t, recs, opts)
				hs, err := Validate(b)
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if len(hs) != 1 || hs[0].Codec() != c || hs[0].NumRecords != 50 || hs[0].Size() != len(b) {
					t.Fatalf("headers %+v", hs)
				}
				h := hs[0]
				wantPID, wantEpoch, wantSeq := opts.ProducerID, opts.ProducerEpoch, opts.BaseSequence
				if wantPID == 0 {
					wantPID, wantEpoch, wantSeq = -1, -1, -1
				}
				if h.ProducerID != wantPID || h.ProducerEpoch != wantEpoch || h.BaseSequence != wantSeq {
					t.Fatalf("producer fields %d/%d/%d, want %d/%d/%d", h.ProducerID, h.ProducerEpoch, h.BaseSequence, wantPID, wantEpoch, wantSeq)
				}
				if opts.BaseTimestamp != 0 && h.BaseTimestamp != opts.BaseTimestamp {
					t.Fatalf("base timestamp %d, want %d", h.BaseTimestamp, opts.BaseTimestamp)
				}
				got, err := Records(b)
				if err != nil {
					t.Fatalf("Records: %v", err)
				}
				if want := withOffsets(recs, 0); !reflect.DeepEqual(got, want) {
					t.Fatalf("records differ\n got %+v\nwant %+v", got[:2], want[:2])
				}
			})
		}
	}
}

func TestBuildRejects(t *testing.T) {
	if _, err := Build(nil, BuildOptions{}); !errors.Is(err, ErrInvalidRecord) {
		t.Errorf("no records: got %v, want ErrInvalidRecord", err)
	}
	if _, err := Build(sampleRecords(1), BuildOptions{Codec: 5}); !errors.Is(err, ErrUnsupportedCodec) {
		t.Errorf("codec 5: got %v, want ErrUnsupportedCodec", err)
	}
	if _, err := Build(sampleRecords(1), BuildOptions{Codec: -1}); !errors.Is(err, ErrUnsupportedCodec) {
		t.Errorf("codec -1: got %v, want ErrUnsupportedCodec", err)
	}
}

func TestValidateRejects(t *testing.T) {
	good := mustBuild(t, sampleRecords(3), BuildOptions{})
	gz := mustBuild(t, sampleRecords(3), BuildOptions{Codec: Gzip})
	be := binary.BigEndian
	setLen := func(n int32) func([]byte) { return func(b []byte) { be.PutUint32(b[offBatchLength:], uint32(n)) } }
	size := int32(len(good))
	tests := []struct {
		name  string
		input []byte
		want  error
	}{
		{"empty", nil, ErrInvalidRecord},
		{"bad crc", edit(good, false, func(b []byte) { b[len(b)-1] ^= 1 }), ErrCorrupt},
		{"bad crc in header field", edit(good, false, func(b []byte) { b[offMaxTimestamp] ^= 0x40 }), ErrCorrupt},
		{"bad crc compressed", edit(gz, false, func(b []byte) { b[HeaderSize+12] ^= 0xff }), ErrCorrupt},
		{"truncated by one", good[:len(good)-1], ErrCorrupt},
		{"truncated header", good[:HeaderSize-1], ErrCorrupt},
		{"only the length", good[:12], ErrCorrupt},
		{"fewer than 12 bytes", good[:11], ErrCorrupt},
		{"length runs past end", edit(good, false, setLen(size-12+1)), ErrCorrupt},
		{"length short by one", edit(good, false, setLen(size-12-1)), ErrCorrupt},
		{"length below header", edit(good, false, setLen(20)), ErrCorrupt},
		{"length too small for magic", edit(good, false, setLen(4)), ErrCorrupt},
		{"negative length", edit(good, false, setLen(-1)), ErrCorrupt},
		{"magic 0", edit(good, true, func(b []byte) { b[offMagic] = 0 }), ErrUnsupportedMagic},
		{"magic 1", edit(good, true, func(b []byte) { b[offMagic] = 1 }), ErrUnsupportedMagic},
		{"magic 3", edit(good, true, func(b []byte) { b[offMagic] = 3 }), ErrCorrupt},
		{"codec 5", edit(good, true, func(b []byte) { b[offAttributes+1] |= 5 }), ErrUnsupportedCodec},
		{"codec 7", edit(good, true, func(b []byte) { b[offAttributes+1] |= 7 }), ErrUnsupportedCodec},
		{"no records", edit(good, true, func(b []byte) {
			be.PutUint32(b[offNumRecords:], 0)
			be.PutUint32(b[offLastOffsetDelta:], 0xffffffff)
		}), ErrInvalidRecord},
		{"negative record count", edit(good, true, func(b []byte) {
			be.PutUint32(b[offNumRecords:], 0xfffffffe)
			be.PutUint32(b[offLastOffsetDelta:], 0xfffffffd)
		}), ErrInvalidRecord},
		{"delta too large", edit(good, true, func(b []byte) { be.PutUint32(b[offLastOffsetDelta:], 3) }), ErrInvalidRecord},
		{"delta too small", edit(good, true, func(b []byte) { be.PutUint32(b[offLastOffsetDelta:], 1) }), ErrInvalidRecord},
		{"control batch", edit(good, true, func(b []byte) { b[offAttributes+1] |= attrControl }), ErrInvalidRecord},
		{"producer without sequence", mustBuild(t, sampleRecords(3), BuildOptions{ProducerID: 5, BaseSequence: -1}), ErrInvalidRecord},
		{"trailing byte", append(bytes.Clone(good), 0), ErrCorrupt},
		{"trailing 11 bytes", append(bytes.Clone(good), make([]byte, 11)...), ErrCorrupt},
		{"trailing zero batch header", append(bytes.Clone(good), make([]byte, HeaderSize)...), ErrCorrupt},
		{"trailing partial batch", append(bytes.Clone(good), good[:30]...), ErrCorrupt},
		{"second batch corrupt", append(bytes.Clone(good), edit(good, false, func(b []byte) { b[70] ^= 1 })...), ErrCorrupt},
		{"second batch control", append(bytes.Clone(good), edit(good, true, func(b []byte) { b[offAttributes+1] |= attrControl })...), ErrInvalidRecord},
	}
	kinds := []error{ErrCorrupt, ErrInvalidRecord, ErrUnsupportedMagic, ErrUnsupportedCodec, ErrTooLarge}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs, err := Validate(tt.input)
			if err == nil {
				t.Fatalf("accepted; headers %+v", hs)
			}
			for _, k := range kinds {
				if errors.Is(err, k) != (k == tt.want) {
					t.Fatalf("got %v; want only %v", err, tt.want)
				}
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%v is not a *kbatch.Error", err)
			}
			if hs != nil {
				t.Fatalf("headers returned with an error: %+v", hs)
			}
		})
	}
}

func TestValidateErrorOffset(t *testing.T) {
	good := mustBuild(t, sampleRecords(3), BuildOptions{})
	in := append(bytes.Clone(good), edit(good, false, func(b []byte) { b[70] ^= 1 })...)
	_, err := Validate(in)
	var e *Error
	if !errors.As(err, &e) || e.Offset != len(good) {
		t.Fatalf("got %v, want an *Error at byte %d", err, len(good))
	}
}

func TestValidateAccepts(t *testing.T) {
	recs := sampleRecords(4)
	a := mustBuild(t, recs, BuildOptions{Codec: Zstd})
	b := mustBuild(t, recs, BuildOptions{Codec: Snappy, ProducerID: 1, BaseSequence: 0})
	txn := edit(mustBuild(t, recs, BuildOptions{ProducerID: 3, BaseSequence: 4}), true, func(b []byte) { b[offAttributes+1] |= attrTransactional })
	appendTime := edit(a, true, func(b []byte) { b[offAttributes+1] |= attrLogAppendTime })
	offsetSet := bytes.Clone(b)
	SetBaseOffset(offsetSet, 12345)
	tests := []struct {
		name  string
		input []byte
		n     int
	}{
		{"one batch", a, 1},
		{"two batches", append(bytes.Clone(a), b...), 2},
		{"transactional", txn, 1},
		{"client set log append time", appendTime, 1},
		{"nonzero base offset", offsetSet, 1},
		{"three batches", append(append(bytes.Clone(b), txn...), a...), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs, err := Validate(tt.input)
			if err != nil {
				t.Fatal(err)
			}
			total := 0
			for _, h := range hs {
				total += h.Size()
			}
			if len(hs) != tt.n || total != len(tt.input) {
				t.Fatalf("%d headers covering %d bytes, want %d covering %d", len(hs), total, tt.n, len(tt.input))
			}
		})
	}
}

func TestSetBaseOffsetAndEpoch(t *testing.T) {
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			recs := sampleRecords(7)
			b := mustBuild(t, recs, BuildOptions{Codec: c})
			SetBaseOffset(b, 1<<40)
			SetPartitionLeaderEpoch(b, 77)
			hs, err := Validate(b)
			if err != nil {
				t.Fatalf("CRC no longer valid: %v", err)
			}
			if hs[0].BaseOffset != 1<<40 || hs[0].PartitionLeaderEpoch != 77 || hs[0].LastOffset() != 1<<40+6 {
				t.Fatalf("header %+v", hs[0])
			}
			got, err := Records(b)
			if err != nil {
				t.Fatal(err)
			}
			if want := withOffsets(recs, 1<<40); !reflect.DeepEqual(got, want) {
				t.Fatalf("records after rebase differ")
			}
		})
	}
}

func TestSetLogAppendTime(t *testing.T) {
	const appendTime = 1_800_000_000_123
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			recs := sampleRecords(9)
			b := mustBuild(t, recs, BuildOptions{Codec: c})
			base := binary.BigEndian.Uint64(b[offBaseTimestamp:])
			// A second batch after it must be neither summed nor touched.
			next := mustBuild(t, recs, BuildOptions{})
			both := append(bytes.Clone(b), next...)
			SetLogAppendTime(both, appendTime)
			if !bytes.Equal(both[len(b):], next) {
				t.Fatal("SetLogAppendTime changed bytes after the batch")
			}
			hs, err := Validate(both)
			if err != nil {
				t.Fatalf("CRC no longer valid: %v", err)
			}
			h := hs[0]
			if !h.LogAppendTime() || h.MaxTimestamp != appendTime || h.Codec() != c || uint64(h.BaseTimestamp) != base {
				t.Fatalf("header %+v", h)
			}
			if hs[1].LogAppendTime() {
				t.Fatal("second batch marked")
			}
			got, err := Records(both[:len(b)])
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range got {
				if r.Timestamp != appendTime {
					t.Fatalf("record %d timestamp %d, want the append time %d", i, r.Timestamp, int64(appendTime))
				}
			}
		})
	}
}

func TestRewriteShortInputIsNoop(t *testing.T) {
	for n := 0; n < HeaderSize; n++ {
		b := bytes.Repeat([]byte{0xaa}, n)
		SetBaseOffset(b, 1)
		SetPartitionLeaderEpoch(b, 1)
		SetLogAppendTime(b, 1)
		if n < 8 && !bytes.Equal(b, bytes.Repeat([]byte{0xaa}, n)) {
			t.Fatalf("len %d changed", n)
		}
	}
	// A header whose length runs past the slice is not a whole batch:
	// SetLogAppendTime must not stamp a CRC over half of it.
	good := mustBuild(t, sampleRecords(2), BuildOptions{})
	cut := bytes.Clone(good[:len(good)-1])
	SetLogAppendTime(cut, 99)
	if !bytes.Equal(cut, good[:len(good)-1]) {
		t.Fatal("SetLogAppendTime rewrote a truncated batch")
	}
}

func TestRecordsXerialSnappy(t *testing.T) {
	recs := sampleRecords(40)
	raw := rawRecords(t, recs)
	base := mustBuild(t, recs, BuildOptions{})
	for _, chunk := range []int{1, 100, 32 << 10} {
		b := withPayload(base, Snappy, xerial(raw, chunk))
		if _, err := Validate(b); err != nil {
			t.Fatal(err)
		}
		got, err := Records(b)
		if err != nil {
			t.Fatalf("chunk %d: %v", chunk, err)
		}
		if !reflect.DeepEqual(got, withOffsets(recs, 0)) {
			t.Fatalf("chunk %d: records differ", chunk)
		}
	}
	framed := xerial(raw, 100)
	bad := []struct {
		name    string
		payload []byte
	}{
		{"chunk runs past end", framed[:len(framed)-1]},
		{"partial chunk length", append(bytes.Clone(framed), 0, 0)},
		{"garbage block", append(xerial(nil, 1), 0, 0, 0, 3, 0xff, 0xff, 0xff)},
		{"header only", xerial(nil, 1)},
	}
	for _, tt := range bad {
		if _, err := Records(withPayload(base, Snappy, tt.payload)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: got %v, want ErrCorrupt", tt.name, err)
		}
	}
}

func TestRecordsRejects(t *testing.T) {
	recs := sampleRecords(3)
	good := mustBuild(t, recs, BuildOptions{})
	raw := rawRecords(t, recs)
	be := binary.BigEndian
	tests := []struct {
		name  string
		input []byte
		want  error
	}{
		{"bad crc", edit(good, false, func(b []byte) { b[len(b)-1] ^= 1 }), ErrCorrupt},
		{"magic 1", edit(good, true, func(b []byte) { b[offMagic] = 1 }), ErrUnsupportedMagic},
		{"codec 6", edit(good, true, func(b []byte) { b[offAttributes+1] |= 6 }), ErrUnsupportedCodec},
		{"truncated", good[:len(good)-1], ErrCorrupt},
		{"two batches", append(bytes.Clone(good), good...), ErrCorrupt},
		{"count too high", edit(good, true, func(b []byte) { be.PutUint32(b[offNumRecords:], 4) }), ErrCorrupt},
		{"count too low", edit(good, true, func(b []byte) { be.PutUint32(b[offNumRecords:], 2) }), ErrCorrupt},
		{"count huge", edit(good, true, func(b []byte) { be.PutUint32(b[offNumRecords:], 1<<30) }), ErrCorrupt},
		{"count negative", edit(good, true, func(b []byte) { be.PutUint32(b[offNumRecords:], 0x80000000) }), ErrCorrupt},
		{"record length too long", withPayload(good, None, append([]byte{0x7e}, raw[1:]...)), ErrCorrupt},
		{"trailing byte in records", withPayload(good, None, append(bytes.Clone(raw), 0)), ErrCorrupt},
		{"gzip garbage", withPayload(good, Gzip, []byte("not gzip at all")), ErrCorrupt},
		{"lz4 garbage", withPayload(good, LZ4, []byte("not lz4 at all")), ErrCorrupt},
		{"zstd garbage", withPayload(good, Zstd, []byte("not zstd at all")), ErrCorrupt},
		{"snappy garbage", withPayload(good, Snappy, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}), ErrCorrupt},
		{"null header key", withPayload(good, None, nullHeaderKeyRecord()), ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Records(tt.input)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v (%d records), want %v", err, len(got), tt.want)
			}
		})
	}
}

// nullHeaderKeyRecord returns three records, the first with a header whose
// key length is -1, which Kafka rejects.
func nullHeaderKeyRecord() []byte {
	rec := []byte{0}                   // attributes
	rec = binary.AppendVarint(rec, 0)  // timestamp delta
	rec = binary.AppendVarint(rec, 0)  // offset delta
	rec = binary.AppendVarint(rec, -1) // null key
	rec = binary.AppendVarint(rec, -1) // null value
	rec = binary.AppendVarint(rec, 1)  // one header
	rec = binary.AppendVarint(rec, -1) // null header key
	rec = binary.AppendVarint(rec, 1)
	rec = append(rec, 'v')
	out := binary.AppendVarint(nil, int64(len(rec)))
	out = append(out, rec...)
	// Two more valid records so the count of three is right.
	for i := 1; i < 3; i++ {
		r := []byte{0}
		r = binary.AppendVarint(r, 0)
		r = binary.AppendVarint(r, int64(i))
		r = binary.AppendVarint(r, -1)
		r = binary.AppendVarint(r, -1)
		r = binary.AppendVarint(r, 0)
		out = binary.AppendVarint(out, int64(len(r)))
		out = append(out, r...)
	}
	return out
}

func TestRecordsEmptyBatch(t *testing.T) {
	// Compaction can leave a batch with no records; readers must take it.
	b := withPayload(mustBuild(t, sampleRecords(1), BuildOptions{}), None, nil)
	b = edit(b, true, func(b []byte) { binary.BigEndian.PutUint32(b[offNumRecords:], 0) })
	got, err := Records(b)
	if err != nil || len(got) != 0 {
		t.Fatalf("got %d records, %v", len(got), err)
	}
}

func TestRecordsAliasUncompressed(t *testing.T) {
	b := mustBuild(t, []Record{{Key: []byte("k"), Value: []byte("v")}}, BuildOptions{})
	got, err := Records(b)
	if err != nil {
		t.Fatal(err)
	}
	// Appending to a decoded field must not overwrite the batch.
	before := bytes.Clone(b)
	_ = append(got[0].Key, "XXXX"...)
	if !bytes.Equal(b, before) {
		t.Fatal("append to a decoded key overwrote the batch")
	}
}
