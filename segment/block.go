package segment

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"slices"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Block format constants; FORMAT.md section 1 is the specification.
const (
	// MaxBlockSize is the largest payload (compressed or not) a block may
	// declare. It bounds what decoding one block can make a reader allocate.
	MaxBlockSize = 64 << 20
	// BlockHeaderSize is the fixed size of a block header; a block's encoded
	// length is BlockHeaderSize plus its stored payload length.
	BlockHeaderSize = 52

	blockMagic   = 0x5354424B // "STBK"
	blockVersion = 1

	codecMask = 0x03
	codecNone = 0
	codecZstd = 1

	// minCompressSize is the payload size below which zstd's frame overhead
	// and CPU are not worth it.
	minCompressSize = 512
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// BlockMeta describes the Kafka batches inside one block. It is copied into
// every index so a reader can locate offsets and timestamps without
// decompressing.
type BlockMeta struct {
	BaseOffset   int64 // first offset in the block
	LastOffset   int64 // last offset in the block (inclusive)
	MaxTimestamp int64 // largest record timestamp, ms since the epoch
	BatchCount   int32 // number of RecordBatches in the block
}

// blockHeader is a parsed and validated block header.
type blockHeader struct {
	meta       BlockMeta
	codec      byte
	rawLen     int
	storedLen  int
	payloadCRC uint32
}

// The zstd encoder and decoder are created once and shared: their EncodeAll
// and DecodeAll methods are safe for concurrent use and keep internal pools
// of per-goroutine state (GOMAXPROCS of them), so no caller pays for
// allocating encoder tables per block.
var (
	encoder = sync.OnceValue(func() *zstd.Encoder {
		e, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderCRC(false), // payloadCRC covers the stored bytes
			// Single-segment frames always declare their content size,
			// which DecodeBlock checks against rawLen before allocating.
			zstd.WithSingleSegment(true),
		)
		if err != nil {
			return nil // AppendBlock then stores blocks raw
		}
		return e
	})
	decoder = sync.OnceValues(func() (*zstd.Decoder, error) {
		return zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(0),
			zstd.WithDecoderMaxMemory(MaxBlockSize),
			zstd.WithDecodeAllCapLimit(true),
			zstd.IgnoreChecksum(true),
		)
	})
)

// AppendBlock appends one encoded block holding batches to dst and returns
// the extended slice. The payload is compressed with zstd at its fastest
// level unless that does not pay: payloads under 512 bytes, or whose
// compressed form is not at least 5% smaller, are stored raw. It is safe for
// concurrent use.
//
// meta must describe batches (BaseOffset <= LastOffset, offsets >= 0) and
// len(batches) must not exceed MaxBlockSize; AppendBlock cannot fail, so a
// block violating this is still appended but every decoder (and therefore
// Writer.Append, Encode and FlushObjectBuilder.AddRun) rejects it. An
// oversized payload is not copied: only a header declaring it is appended,
// and decoders report it as ErrTooLarge.
func AppendBlock(dst []byte, meta BlockMeta, batches []byte) []byte {
	return appendBlock(dst, meta, batches, true)
}

// AppendRawBlock is AppendBlock without trying zstd: for batches a client
// already compressed, where a second compression costs CPU and saves
// nothing. The block is the same format (codec none) for every reader.
func AppendRawBlock(dst []byte, meta BlockMeta, batches []byte) []byte {
	return appendBlock(dst, meta, batches, false)
}

func appendBlock(dst []byte, meta BlockMeta, batches []byte, tryCompress bool) []byte {
	start := len(dst)
	if len(batches) > MaxBlockSize {
		dst = appendBlockHeader(dst, meta, codecNone, math.MaxUint32, math.MaxUint32, 0)
		return dst
	}
	dst = slices.Grow(dst, BlockHeaderSize+len(batches))
	dst = dst[:start+BlockHeaderSize]
	codec := byte(codecNone)
	if tryCompress && len(batches) >= minCompressSize {
		if enc := encoder(); enc != nil {
			out := enc.EncodeAll(batches, dst)
			if stored := len(out) - len(dst); stored <= len(batches)-len(batches)/20 {
				dst, codec = out, codecZstd
			} else {
				dst = out[:start+BlockHeaderSize]
			}
		}
	}
	if codec == codecNone {
		dst = append(dst, batches...)
	}
	payload := dst[start+BlockHeaderSize:]
	putBlockHeader(dst[start:start+BlockHeaderSize], meta, codec, uint32(len(batches)), uint32(len(payload)), crc(payload))
	return dst
}

func appendBlockHeader(dst []byte, meta BlockMeta, codec byte, rawLen, storedLen, payloadCRC uint32) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, BlockHeaderSize)...)
	putBlockHeader(dst[start:], meta, codec, rawLen, storedLen, payloadCRC)
	return dst
}

func putBlockHeader(h []byte, meta BlockMeta, codec byte, rawLen, storedLen, payloadCRC uint32) {
	be := binary.BigEndian
	be.PutUint32(h[0:], blockMagic)
	h[4] = blockVersion
	h[5] = codec
	h[6], h[7] = 0, 0
	be.PutUint64(h[8:], uint64(meta.BaseOffset))
	be.PutUint64(h[16:], uint64(meta.LastOffset))
	be.PutUint64(h[24:], uint64(meta.MaxTimestamp))
	be.PutUint32(h[32:], uint32(meta.BatchCount))
	be.PutUint32(h[36:], rawLen)
	be.PutUint32(h[40:], storedLen)
	be.PutUint32(h[44:], payloadCRC)
	be.PutUint32(h[48:], crc(h[:48]))
}

// parseBlockHeader validates the 52-byte header at the start of b. Errors
// are *CorruptionError at offset 0.
func parseBlockHeader(b []byte) (blockHeader, error) {
	var h blockHeader
	if len(b) < BlockHeaderSize {
		return h, &CorruptionError{Err: fmt.Errorf("block header: %d of %d bytes: %w", len(b), BlockHeaderSize, io.ErrUnexpectedEOF)}
	}
	be := binary.BigEndian
	if m := be.Uint32(b[0:]); m != blockMagic {
		return h, corruptf(0, "block header: bad magic %08x", m)
	}
	if got, want := be.Uint32(b[48:]), crc(b[:48]); got != want {
		return h, corruptf(0, "block header: crc %08x, computed %08x", got, want)
	}
	if b[4] != blockVersion {
		return h, corruptf(0, "block header: unsupported version %d", b[4])
	}
	if b[5]&^codecMask != 0 || b[6] != 0 || b[7] != 0 {
		return h, corruptf(0, "block header: reserved bits set (flags %02x, reserved %02x%02x)", b[5], b[6], b[7])
	}
	h.codec = b[5] & codecMask
	h.meta = BlockMeta{
		BaseOffset:   int64(be.Uint64(b[8:])),
		LastOffset:   int64(be.Uint64(b[16:])),
		MaxTimestamp: int64(be.Uint64(b[24:])),
		BatchCount:   int32(be.Uint32(b[32:])),
	}
	raw, stored := be.Uint32(b[36:]), be.Uint32(b[40:])
	h.payloadCRC = be.Uint32(b[44:])
	switch {
	case h.meta.BaseOffset < 0 || h.meta.LastOffset < h.meta.BaseOffset:
		return h, corruptf(0, "block header: bad offsets [%d, %d]", h.meta.BaseOffset, h.meta.LastOffset)
	case h.meta.BatchCount < 0:
		return h, corruptf(0, "block header: negative batch count %d", h.meta.BatchCount)
	case raw > MaxBlockSize || stored > MaxBlockSize:
		return h, &CorruptionError{Err: fmt.Errorf("%w: raw %d, stored %d bytes, max %d", ErrTooLarge, raw, stored, MaxBlockSize)}
	}
	switch h.codec {
	case codecNone:
		if raw != stored {
			return h, corruptf(0, "block header: raw block with raw length %d != stored length %d", raw, stored)
		}
	case codecZstd:
		if stored == 0 {
			return h, corruptf(0, "block header: empty zstd payload")
		}
	default:
		return h, corruptf(0, "block header: unknown codec %d", h.codec)
	}
	h.rawLen, h.storedLen = int(raw), int(stored)
	return h, nil
}

// encodedLen is the total length of the block described by h.
func (h *blockHeader) encodedLen() int { return BlockHeaderSize + h.storedLen }

// checkBlock validates the header and payload CRC of the block at the start
// of b without decompressing it, returning its header and encoded length.
func checkBlock(b []byte) (blockHeader, int, error) {
	h, err := parseBlockHeader(b)
	if err != nil {
		return h, 0, err
	}
	n := h.encodedLen()
	if len(b) < n {
		return h, 0, &CorruptionError{Err: fmt.Errorf("block: %d of %d bytes: %w", len(b), n, io.ErrUnexpectedEOF)}
	}
	if got := crc(b[BlockHeaderSize:n]); got != h.payloadCRC {
		return h, 0, corruptf(0, "block payload: crc %08x, header says %08x", got, h.payloadCRC)
	}
	return h, n, nil
}

// PeekBlock parses the block header at the start of b without decompressing
// and returns the block's meta and its total encoded length n. It verifies
// magic, version, the header CRC and that the lengths are sane and present
// in b, but not the payload CRC (DecodeBlock does), so it is cheap enough for
// indexing blocks that were just encoded. A truncated block yields an error
// that also matches io.ErrUnexpectedEOF.
func PeekBlock(b []byte) (meta BlockMeta, n int, err error) {
	h, err := parseBlockHeader(b)
	if err != nil {
		return BlockMeta{}, 0, err
	}
	n = h.encodedLen()
	if len(b) < n {
		return BlockMeta{}, 0, &CorruptionError{Err: fmt.Errorf("block: %d of %d bytes: %w", len(b), n, io.ErrUnexpectedEOF)}
	}
	return h.meta, n, nil
}

// DecodeBlock verifies the block at the start of b (header and payload
// CRC-32C), decompresses it, and appends its batches to dst. It returns the
// block's meta, dst extended by the batches, and the block's encoded length
// n, so a caller can step through concatenated blocks. Output is bounded by
// the block's declared length (at most MaxBlockSize), so garbage cannot make
// it allocate more. On error dst is returned unextended.
func DecodeBlock(dst, b []byte) (meta BlockMeta, batches []byte, n int, err error) {
	h, n, err := checkBlock(b)
	if err != nil {
		return BlockMeta{}, dst, 0, err
	}
	payload := b[BlockHeaderSize:n]
	switch h.codec {
	case codecNone:
		return h.meta, append(dst, payload...), n, nil
	default: // codecZstd; parseBlockHeader rejects others
		out, err := decompress(dst, payload, h.rawLen)
		if err != nil {
			return BlockMeta{}, dst, 0, err
		}
		return h.meta, out, n, nil
	}
}

// DecodeBlockShared is DecodeBlock into a new buffer, except that an
// uncompressed block's batches are returned as a sub-slice of b (no copy):
// b must then stay unmodified for as long as they are used.
func DecodeBlockShared(b []byte) (meta BlockMeta, batches []byte, n int, err error) {
	h, n, err := checkBlock(b)
	if err != nil {
		return BlockMeta{}, nil, 0, err
	}
	if h.codec == codecNone {
		return h.meta, b[BlockHeaderSize:n:n], n, nil
	}
	return DecodeBlock(nil, b)
}

// RawBlockPayload returns the batches of a block just built by
// AppendRawBlock or AppendBlock, when it is stored uncompressed, as a
// sub-slice of b. It checks the header but not the payload CRC: it is for
// blocks this process made, not for bytes read back.
func RawBlockPayload(b []byte) ([]byte, bool) {
	h, err := parseBlockHeader(b)
	if err != nil || h.codec != codecNone || len(b) < h.encodedLen() {
		return nil, false
	}
	return b[BlockHeaderSize:h.encodedLen():h.encodedLen()], true
}

// decompress appends the rawLen bytes of the zstd frame in payload to dst.
func decompress(dst, payload []byte, rawLen int) ([]byte, error) {
	var zh zstd.Header
	if err := zh.Decode(payload); err != nil {
		return dst, corruptf(0, "zstd frame header: %w", err)
	}
	if zh.Skippable || zh.DictionaryID != 0 || !zh.HasFCS || zh.FrameContentSize != uint64(rawLen) {
		return dst, corruptf(0, "zstd frame header: content size %d (known %v), block says %d", zh.FrameContentSize, zh.HasFCS, rawLen)
	}
	dec, err := decoder()
	if err != nil {
		return dst, fmt.Errorf("segment: zstd decoder: %w", err)
	}
	start := len(dst)
	buf := slices.Grow(dst, rawLen)
	// The capacity limit makes DecodeAll fail rather than grow past rawLen.
	out, err := dec.DecodeAll(payload, buf[:start:start+rawLen])
	if err != nil {
		return dst, corruptf(0, "zstd: %w", err)
	}
	if len(out)-start != rawLen {
		return dst, corruptf(0, "zstd: decoded %d bytes, block says %d", len(out)-start, rawLen)
	}
	return buf[:start+rawLen], nil
}

// readBufs recycles the buffers ReadBlockAt reads compressed blocks into.
// Buffers above maxPooledBuf are left to the garbage collector so one huge
// block does not pin its memory in the pool.
var readBufs sync.Pool

const maxPooledBuf = 4 << 20

// ReadBlockAt reads the block ref describes from r, verifies it against ref
// (the meta and size recorded in an index must match the block's own
// header), and appends its decompressed batches to dst. It is what
// Reader.ReadBlock does, exported so blocks of an unsealed segment (refs
// from Writer.Blocks) can be read through a separate file handle.
func ReadBlockAt(r io.ReaderAt, ref BlockRef, dst []byte) ([]byte, error) {
	if ref.Size < BlockHeaderSize || ref.Size > BlockHeaderSize+MaxBlockSize || ref.Pos < 0 {
		return dst, corruptf(ref.Pos, "block ref: bad size %d at %d", ref.Size, ref.Pos)
	}
	var buf []byte
	if ref.Size <= maxPooledBuf {
		bp, _ := readBufs.Get().(*[]byte)
		if bp == nil {
			bp = new([]byte)
		}
		if int64(cap(*bp)) < ref.Size {
			*bp = make([]byte, ref.Size, max(ref.Size, 64<<10))
		}
		buf = (*bp)[:ref.Size]
		defer readBufs.Put(bp)
	} else {
		buf = make([]byte, ref.Size)
	}
	if n, err := r.ReadAt(buf, ref.Pos); n < len(buf) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return dst, fmt.Errorf("segment: read block at %d: %w", ref.Pos, err)
	}
	meta, out, n, err := DecodeBlock(dst, buf)
	if err != nil {
		return dst, withPlace(err, "", ref.Pos)
	}
	if int64(n) != ref.Size || meta != ref.BlockMeta {
		return dst, corruptf(ref.Pos, "block %+v (%d bytes) does not match its index entry %+v (%d bytes)", meta, n, ref.BlockMeta, ref.Size)
	}
	return out, nil
}
