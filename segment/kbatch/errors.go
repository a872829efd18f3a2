package kbatch

import (
	"errors"
	"strconv"
)

// Sentinel errors. Each maps to one Kafka error code at the ingest boundary;
// callers match them with errors.Is.
var (
	// ErrCorrupt means the bytes are not a well-formed batch: truncated,
	// length fields that disagree, a CRC mismatch, malformed records, or
	// trailing bytes. Kafka answers CORRUPT_MESSAGE.
	ErrCorrupt = errors.New("kbatch: corrupt record batch")

	// ErrInvalidRecord means the batch is well formed but breaks a rule
	// Kafka imposes on client batches: no records, a record count that
	// disagrees with the offset range, a control batch, or a producer id
	// without a sequence. Kafka answers INVALID_RECORD.
	ErrInvalidRecord = errors.New("kbatch: invalid record batch")

	// ErrUnsupportedMagic means a legacy message set (magic 0 or 1), which
	// Strata does not accept. Kafka answers UNSUPPORTED_FOR_MESSAGE_FORMAT.
	ErrUnsupportedMagic = errors.New("kbatch: unsupported message format")

	// ErrUnsupportedCodec means compression codec bits above 4 (zstd).
	// Kafka answers UNSUPPORTED_COMPRESSION_TYPE.
	ErrUnsupportedCodec = errors.New("kbatch: unsupported compression type")

	// ErrTooLarge means a batch would decompress to more than
	// MaxUncompressed bytes; Records stops rather than exhaust memory.
	ErrTooLarge = errors.New("kbatch: batch too large when decompressed")
)

// Error says where in the input a batch went wrong. Kind is one of the
// sentinel errors, so errors.Is(err, ErrCorrupt) and friends work; Offset is
// the byte position (within the slice handed to the failing call) of the
// batch at fault, which is what an operator needs to find it in a dump.
type Error struct {
	Kind   error  // one of the sentinel errors
	Offset int    // byte offset of the offending batch in the input
	Detail string // what exactly was wrong
}

// Error formats the error as "<kind>: at byte <offset>: <detail>".
func (e *Error) Error() string {
	return e.Kind.Error() + ": at byte " + strconv.Itoa(e.Offset) + ": " + e.Detail
}

// Unwrap returns the sentinel kind so errors.Is matches it.
func (e *Error) Unwrap() error { return e.Kind }

// errAt builds an *Error. Only failure paths call it, so the validate path
// stays allocation-free when batches are good.
func errAt(kind error, off int, detail string) error {
	return &Error{Kind: kind, Offset: off, Detail: detail}
}
