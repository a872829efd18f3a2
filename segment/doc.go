// Package segment owns Strata's storage format: the bytes of every block,
// segment file and flush object Strata writes, specified in FORMAT.md next to
// this file.
//
// It provides three layers:
//
//   - Blocks (AppendBlock, PeekBlock, DecodeBlock): a self-delimiting,
//     checksummed and usually zstd-compressed unit holding whole Kafka
//     RecordBatch v2 bytes of one partition. The batches are opaque here; the
//     package never parses them (segment/kbatch does).
//   - Segments (Create, Recover, Writer, Encode, OpenReader, Reader): one
//     partition's blocks in offset order, sealed with a block index, a time
//     index and a trailer so a reader locates any offset or timestamp with two
//     ranged reads.
//   - Flush objects (FlushObjectBuilder, ParseFlushObject, DecodeRun): one
//     object per flush holding runs of blocks of many partitions plus a
//     directory of the runs.
//
// The package is pure: it imports nothing else of Strata's and has no I/O
// policy. It reads and writes only the files and buffers it is given, never
// decides when to fsync beyond what its contract states (Seal, Sync,
// Truncate), never names or deletes files, and keeps no global state besides
// the pooled zstd encoder and decoder. It must never panic on bad input and
// never return data that failed its checksum: every decoder bounds lengths
// before allocating and reports damage as a *CorruptionError wrapping
// ErrCorrupt.
package segment
