package segment

import (
	"bytes"
	"errors"
	"io"
	"math"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func TestBlockRoundTrip(t *testing.T) {
	rng := newRNG(1)
	tests := []struct {
		name      string
		payload   []byte
		wantCodec byte
	}{
		{"empty", nil, codecNone},
		{"one byte", []byte{7}, codecNone},
		{"511 compressible", semiCompressible(rng, 511), codecNone},
		{"512 compressible", semiCompressible(rng, 512), codecZstd},
		{"4099 compressible", semiCompressible(rng, 4099), codecZstd},
		{"16KiB compressible", semiCompressible(rng, 16<<10), codecZstd},
		{"1MiB+3 compressible", semiCompressible(rng, 1<<20+3), codecZstd},
		{"600 incompressible", incompressible(rng, 600), codecNone},
		{"16KiB incompressible", incompressible(rng, 16<<10), codecNone},
		{"zeros", make([]byte, 100_000), codecZstd},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			meta := BlockMeta{BaseOffset: 42, LastOffset: 99, MaxTimestamp: -1, BatchCount: 3}
			prefix := []byte("prefix")
			enc := AppendBlock(append([]byte(nil), prefix...), meta, tt.payload)
			if !bytes.Equal(enc[:len(prefix)], prefix) {
				t.Fatal("AppendBlock clobbered dst")
			}
			blk := enc[len(prefix):]
			if got := blk[5] & codecMask; got != tt.wantCodec {
				t.Errorf("codec %d, want %d", got, tt.wantCodec)
			}
			if tt.wantCodec == codecZstd && len(blk)-BlockHeaderSize > len(tt.payload)*95/100 {
				t.Errorf("stored %d bytes for %d", len(blk)-BlockHeaderSize, len(tt.payload))
			}
			// Trailing bytes after the block must be ignored.
			withTail := append(append([]byte(nil), blk...), "tail"...)

			pm, pn, err := PeekBlock(withTail)
			if err != nil || pm != meta || pn != len(blk) {
				t.Fatalf("PeekBlock = %+v, %d, %v; want %+v, %d", pm, pn, err, meta, len(blk))
			}
			dst := []byte("dst")
			dm, out, dn, err := DecodeBlock(dst, withTail)
			if err != nil {
				t.Fatal(err)
			}
			if dm != meta || dn != len(blk) {
				t.Errorf("DecodeBlock meta %+v n %d", dm, dn)
			}
			if !bytes.Equal(out[:3], []byte("dst")) || !bytes.Equal(out[3:], tt.payload) {
				t.Errorf("DecodeBlock returned %d bytes, want dst + %d", len(out), len(tt.payload))
			}
		})
	}
}

func TestBlockCorruptionDetected(t *testing.T) {
	rng := newRNG(2)
	for _, payload := range [][]byte{semiCompressible(rng, 2000), incompressible(rng, 700), nil} {
		blk := AppendBlock(nil, BlockMeta{BaseOffset: 1, LastOffset: 5, MaxTimestamp: 9, BatchCount: 1}, payload)
		// CRC-32C detects every single-bit error, so every flip must fail.
		for bit := 0; bit < len(blk)*8; bit++ {
			bad := bytes.Clone(blk)
			bad[bit/8] ^= 1 << (bit % 8)
			if _, _, _, err := DecodeBlock(nil, bad); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("bit %d of %d flipped: err = %v", bit, len(blk)*8, err)
			}
		}
		// Every truncation fails and says so.
		for n := 0; n < len(blk); n++ {
			_, _, _, err := DecodeBlock(nil, blk[:n])
			if !errors.Is(err, ErrCorrupt) || !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("truncated to %d of %d: err = %v", n, len(blk), err)
			}
			if _, _, err := PeekBlock(blk[:n]); !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("PeekBlock truncated to %d: err = %v", n, err)
			}
		}
	}
}

// craft builds a block around an arbitrary payload with valid CRCs, to test
// the checks behind them.
func craft(meta BlockMeta, codec byte, rawLen uint32, payload []byte) []byte {
	b := appendBlockHeader(nil, meta, codec, rawLen, uint32(len(payload)), crc(payload))
	return append(b, payload...)
}

func TestBlockHeaderChecks(t *testing.T) {
	rng := newRNG(3)
	good := BlockMeta{BaseOffset: 10, LastOffset: 20, BatchCount: 1}
	raw := semiCompressible(rng, 3000)
	var zh0 zstd.Header
	frame := encoder().EncodeAll(raw, nil)

	// A frame that does not declare its content size: without the
	// single-segment option zstd omits it for inputs under 256 bytes.
	plain, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(false))
	if err != nil {
		t.Fatal(err)
	}
	noFCSRaw := semiCompressible(rng, 200)
	noFCS := plain.EncodeAll(noFCSRaw, nil)
	if err := zh0.Decode(noFCS); err != nil || zh0.HasFCS {
		t.Fatalf("expected a frame without content size: %+v, %v", zh0, err)
	}

	// A frame whose declared content size is a lie: 1 byte FCS field for
	// small content sizes (Single_Segment set, FCS flag 0) sits right after
	// the frame header descriptor.
	small := semiCompressible(rng, 200)
	lying := encoder().EncodeAll(small, nil)
	var zh zstd.Header
	if err := zh.Decode(lying); err != nil || !zh.SingleSegment || zh.FrameContentSize != 200 || lying[5] != 200 {
		t.Fatalf("unexpected frame header %+v, %v, byte %d", zh, err, lying[5])
	}
	lying = bytes.Clone(lying)
	lying[5] = 100

	tests := []struct {
		name    string
		blk     []byte
		tooBig  bool
		peekErr bool // PeekBlock must fail too (header-level problem)
	}{
		{"valid zstd", craft(good, codecZstd, uint32(len(raw)), frame), false, false},
		{"base > last", craft(BlockMeta{BaseOffset: 5, LastOffset: 4}, codecNone, 1, []byte{1}), false, true},
		{"negative base", craft(BlockMeta{BaseOffset: -1, LastOffset: 4}, codecNone, 1, []byte{1}), false, true},
		{"negative batch count", craft(BlockMeta{BatchCount: -1}, codecNone, 1, []byte{1}), false, true},
		{"raw length mismatch", craft(good, codecNone, 2, []byte{1}), false, true},
		{"unknown codec", craft(good, 2, 1, []byte{1}), false, true},
		{"empty zstd", craft(good, codecZstd, 0, nil), false, true},
		{"raw over max", appendBlockHeader(nil, good, codecZstd, MaxBlockSize+1, 10, 0), true, true},
		{"stored over max", appendBlockHeader(nil, good, codecZstd, 10, MaxBlockSize+1, 0), true, true},
		{"rawLen below frame size", craft(good, codecZstd, uint32(len(raw)-1), frame), false, false},
		{"rawLen above frame size", craft(good, codecZstd, uint32(len(raw)+1), frame), false, false},
		{"frame without content size", craft(good, codecZstd, uint32(len(noFCSRaw)), noFCS), false, false},
		{"frame lying about content size", craft(good, codecZstd, 100, lying), false, false},
		{"garbage zstd", craft(good, codecZstd, 100, []byte("definitely not zstd")), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, out, _, err := DecodeBlock(nil, tt.blk)
			if tt.name == "valid zstd" {
				if err != nil || !bytes.Equal(out, raw) {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeBlock err = %v, want ErrCorrupt", err)
			}
			if tt.tooBig != errors.Is(err, ErrTooLarge) {
				t.Errorf("errors.Is(err, ErrTooLarge) = %v: %v", !tt.tooBig, err)
			}
			var ce *CorruptionError
			if !errors.As(err, &ce) {
				t.Errorf("err %T is not a *CorruptionError", err)
			}
			if _, _, perr := PeekBlock(tt.blk); (perr != nil) != tt.peekErr {
				t.Errorf("PeekBlock err = %v, want error %v", perr, tt.peekErr)
			}
		})
	}
}

func TestAppendBlockOversized(t *testing.T) {
	big := make([]byte, MaxBlockSize+1)
	blk := AppendBlock(nil, BlockMeta{LastOffset: 1}, big)
	if len(blk) != BlockHeaderSize {
		t.Fatalf("oversized block encoded to %d bytes, want only a header", len(blk))
	}
	if _, _, err := PeekBlock(blk); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("PeekBlock err = %v, want ErrTooLarge", err)
	}
	// Exactly MaxBlockSize is allowed.
	blk = AppendBlock(nil, BlockMeta{LastOffset: 1}, big[:MaxBlockSize])
	if _, out, _, err := DecodeBlock(nil, blk); err != nil || len(out) != MaxBlockSize {
		t.Fatalf("DecodeBlock of a MaxBlockSize block: %d bytes, %v", len(out), err)
	}
}

func TestBlockConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			rng := newRNG(uint64(100 + g))
			for i := range 50 {
				payload := semiCompressible(rng, 1000+rng.IntN(20000))
				meta := BlockMeta{BaseOffset: int64(i), LastOffset: int64(i), MaxTimestamp: math.MaxInt64}
				_, out, _, err := DecodeBlock(nil, AppendBlock(nil, meta, payload))
				if err != nil || !bytes.Equal(out, payload) {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent round trip failed: %v", err)
	}
}

// TestDecodeBlockSharedAndRawPayload: an uncompressed block's batches come
// back as a sub-slice of the block (no copy), a compressed one is
// decompressed, and a damaged payload is refused by DecodeBlockShared.
func TestDecodeBlockSharedAndRawPayload(t *testing.T) {
	meta := BlockMeta{BaseOffset: 10, LastOffset: 12, MaxTimestamp: 99, BatchCount: 1}
	batches := bytes.Repeat([]byte("abcdefgh"), 1024)

	raw := AppendRawBlock(nil, meta, batches)
	p, ok := RawBlockPayload(raw)
	if !ok || !bytes.Equal(p, batches) || &p[0] != &raw[BlockHeaderSize] {
		t.Fatalf("RawBlockPayload: ok %v, equal %v", ok, bytes.Equal(p, batches))
	}
	m, got, n, err := DecodeBlockShared(raw)
	if err != nil || m != meta || n != len(raw) || !bytes.Equal(got, batches) || &got[0] != &raw[BlockHeaderSize] {
		t.Fatalf("DecodeBlockShared(raw): meta %+v n %d err %v", m, n, err)
	}
	if cap(got) != len(got) {
		t.Fatalf("shared batches have spare capacity %d: an append would write into the block", cap(got)-len(got))
	}

	z := AppendBlock(nil, meta, batches) // compressible: stored as zstd
	if _, ok := RawBlockPayload(z); ok {
		t.Fatal("RawBlockPayload accepted a compressed block")
	}
	if _, got, _, err := DecodeBlockShared(z); err != nil || !bytes.Equal(got, batches) {
		t.Fatalf("DecodeBlockShared(zstd): %v", err)
	}

	bad := bytes.Clone(raw)
	bad[len(bad)-1] ^= 1
	if _, _, _, err := DecodeBlockShared(bad); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged payload: err %v, want corruption", err)
	}
}
