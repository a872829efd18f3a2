package kbatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// MaxUncompressed bounds what Records will decompress one batch to. Kafka's
// default max.message.bytes is 1 MiB compressed; 64 MiB leaves room for very
// compressible data while a few hundred bytes of gzip or zstd cannot make the
// process allocate gigabytes.
const MaxUncompressed = 64 << 20

// xerialMagic opens snappy data framed by the Java snappy-java library
// (SnappyOutputStream), which the Java Kafka producer emits. The magic is
// followed by two big-endian int32 versions, then chunks of a big-endian
// int32 length and a raw snappy block.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialHeaderSize = 16

// Decoder pools. Package-level because a pool holds no configuration and no
// goroutines, only reusable buffers: a zstd decoder or lz4 reader costs far
// more to build than to reset, and Records may run for every fetched batch.
var (
	gzipPool = sync.Pool{New: func() any { return new(gzipDecoder) }}
	lz4Pool  = sync.Pool{New: func() any { return &lz4Decoder{r: lz4.NewReader(nil)} }}
	zstdPool = sync.Pool{New: newZstdDecoder}
)

type gzipDecoder struct {
	src bytes.Reader
	r   gzip.Reader
}

type lz4Decoder struct {
	src bytes.Reader
	r   *lz4.Reader
}

type zstdDecoder struct {
	src bytes.Reader
	d   *zstd.Decoder
}

func newZstdDecoder() any {
	// Concurrency 1 decodes on the caller's goroutine, so a pooled decoder
	// owns no goroutines; the finalizer frees its buffers when the pool
	// drops it.
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxMemory(MaxUncompressed+1),
	)
	if err != nil {
		return nil // cannot happen with these options; decompress reports it
	}
	z := &zstdDecoder{d: d}
	runtime.SetFinalizer(z, func(z *zstdDecoder) { z.d.Close() })
	return z
}

// decompress returns src decoded with codec c, or an error if it is malformed
// or would exceed limit bytes. The result never aliases src.
func decompress(c Codec, src []byte, limit int) ([]byte, error) {
	switch c {
	case Gzip:
		g := gzipPool.Get().(*gzipDecoder)
		defer gzipPool.Put(g)
		g.src.Reset(src)
		if err := g.r.Reset(&g.src); err != nil {
			return nil, err
		}
		return readLimited(&g.r, len(src), limit)
	case Snappy:
		return decodeSnappy(src, limit)
	case LZ4:
		l := lz4Pool.Get().(*lz4Decoder)
		defer lz4Pool.Put(l)
		l.src.Reset(src)
		l.r.Reset(&l.src)
		return readLimited(l.r, len(src), limit)
	case Zstd:
		z, _ := zstdPool.Get().(*zstdDecoder)
		if z == nil {
			return nil, errors.New("zstd decoder unavailable")
		}
		defer zstdPool.Put(z)
		// The streaming reader grows its output as data arrives, where
		// DecodeAll would trust the frame's declared content size.
		z.src.Reset(src)
		if err := z.d.Reset(&z.src); err != nil {
			return nil, err
		}
		out, err := readLimited(z.d, len(src), limit)
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
			return nil, ErrTooLarge
		}
		return out, err
	}
	return nil, fmt.Errorf("codec %d", c)
}

// readLimited reads r to the end, failing with ErrTooLarge past limit
// bytes. The buffer starts at a guess from the compressed size and grows
// only as real output arrives, so a lying size field cannot make it
// allocate.
func readLimited(r io.Reader, srcLen, limit int) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, 0, min(4*srcLen+64, limit)))
	n, err := buf.ReadFrom(&io.LimitedReader{R: r, N: int64(limit) + 1})
	if err != nil {
		return nil, err
	}
	if n > int64(limit) {
		return nil, ErrTooLarge
	}
	return buf.Bytes(), nil
}

// decodeSnappy decodes Kafka snappy data, which is a raw snappy block when
// written by most non-Java clients and xerial-framed when written by the
// Java client.
func decodeSnappy(src []byte, limit int) ([]byte, error) {
	if len(src) >= xerialHeaderSize && bytes.HasPrefix(src, xerialMagic) {
		return decodeXerial(src[xerialHeaderSize:], limit)
	}
	n, err := s2.DecodedLen(src)
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, ErrTooLarge
	}
	return s2.Decode(make([]byte, n), src)
}

// decodeXerial decodes the chunks that follow a xerial header. It sums the
// declared sizes first so one allocation holds the output and the limit is
// enforced before any work.
func decodeXerial(src []byte, limit int) ([]byte, error) {
	total := 0
	for rest := src; len(rest) > 0; {
		block, next, err := xerialChunk(rest)
		if err != nil {
			return nil, err
		}
		n, err := s2.DecodedLen(block)
		if err != nil {
			return nil, err
		}
		if n > limit-total {
			return nil, ErrTooLarge
		}
		total += n
		rest = next
	}
	out := make([]byte, total)
	at := 0
	for rest := src; len(rest) > 0; {
		block, next, _ := xerialChunk(rest) // checked by the first pass
		n, _ := s2.DecodedLen(block)
		if _, err := s2.Decode(out[at:at+n], block); err != nil {
			return nil, err
		}
		at += n
		rest = next
	}
	return out, nil
}

// xerialChunk splits one length-prefixed chunk off src.
func xerialChunk(src []byte) (block, rest []byte, err error) {
	if len(src) < 4 {
		return nil, nil, errors.New("truncated xerial chunk length")
	}
	n := binary.BigEndian.Uint32(src)
	src = src[4:]
	if uint64(n) > uint64(len(src)) {
		return nil, nil, fmt.Errorf("xerial chunk of %d bytes with %d left", n, len(src))
	}
	return src[:n], src[n:], nil
}

// compress encodes src with codec c, as Kafka clients do: gzip at the
// default level, snappy as one raw block (like franz-go and librdkafka),
// lz4 as a frame, zstd as one frame.
func compress(c Codec, src []byte) ([]byte, error) {
	var buf bytes.Buffer
	switch c {
	case None:
		return src, nil
	case Gzip:
		w := gzip.NewWriter(&buf)
		if _, err := w.Write(src); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	case Snappy:
		return s2.EncodeSnappy(nil, src), nil
	case LZ4:
		w := lz4.NewWriter(&buf)
		if _, err := w.Write(src); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	case Zstd:
		w, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		defer w.Close()
		return w.EncodeAll(src, nil), nil
	}
	return nil, errAt(ErrUnsupportedCodec, 0, fmt.Sprintf("compression codec %d", c))
}
