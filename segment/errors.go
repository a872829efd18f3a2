package segment

import (
	"errors"
	"fmt"
)

var (
	// ErrCorrupt is wrapped by every error that reports damaged or malformed
	// bytes, so callers can tell "the data is bad" (drop it, fetch another
	// copy) from "the I/O failed" (retry) with errors.Is.
	ErrCorrupt = errors.New("segment: corrupt data")
	// ErrSealed is returned by writes to a Writer whose segment is sealed,
	// because a sealed segment's indexes describe exactly the blocks it holds.
	ErrSealed = errors.New("segment: segment is sealed")
	// ErrClosed is returned by methods of a closed Writer.
	ErrClosed = errors.New("segment: writer closed")
	// ErrOffsetOrder is returned when a block's offsets do not follow the
	// previous block's (or precede the segment's base offset): indexes are
	// binary-searched, so the order is part of the format.
	ErrOffsetOrder = errors.New("segment: block offsets out of order")
	// ErrTooLarge is returned when a block payload exceeds MaxBlockSize.
	ErrTooLarge = errors.New("segment: block too large")
)

// CorruptionError says where damaged bytes were found. It unwraps to both
// ErrCorrupt and the underlying cause (for example io.ErrUnexpectedEOF for a
// truncated block), so errors.Is works for either.
type CorruptionError struct {
	// Path is the file the bytes came from, or "" for an in-memory buffer.
	Path string
	// Offset is the byte position of the damaged structure (a block, header,
	// index or trailer) within the file, object or buffer.
	Offset int64
	// Err describes what check failed.
	Err error
}

// Error implements error.
func (e *CorruptionError) Error() string {
	if e.Path != "" {
		return fmt.Sprintf("segment: corrupt data in %s at byte %d: %v", e.Path, e.Offset, e.Err)
	}
	return fmt.Sprintf("segment: corrupt data at byte %d: %v", e.Offset, e.Err)
}

// Unwrap returns ErrCorrupt and the cause.
func (e *CorruptionError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

// corruptf builds a CorruptionError at offset off with a formatted cause.
func corruptf(off int64, format string, args ...any) *CorruptionError {
	return &CorruptionError{Offset: off, Err: fmt.Errorf(format, args...)}
}

// withPlace returns err with the path set and its offset shifted by base when
// err is a *CorruptionError, so a low-level decoder can report positions
// relative to its input and the caller can make them absolute.
func withPlace(err error, path string, base int64) error {
	var ce *CorruptionError
	if errors.As(err, &ce) {
		return &CorruptionError{Path: path, Offset: base + ce.Offset, Err: ce.Err}
	}
	return err
}
