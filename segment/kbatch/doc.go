// Package kbatch parses, validates, rewrites and decodes Kafka RecordBatch v2
// (magic 2), the unit a Kafka client produces and a broker stores and serves.
//
// It owns the byte layout of a batch and nothing else: no I/O, no state, no
// logging, and no imports from the rest of Strata, so every layer (ingest,
// tier, query, tools) can lean on it.
//
// The ingest Produce handler calls Validate on every batch a client sends, so
// that path reads only the 61-byte header and runs one CRC-32C: it never
// decompresses and allocates nothing but the returned slice. The broker
// rewrites only what Kafka rewrites in place (base offset and partition
// leader epoch, which lie outside the CRC, and the LogAppendTime bit and max
// timestamp, after which the CRC is recomputed). Records decompresses and
// decodes, with its output bounded so a compression bomb cannot exhaust
// memory.
//
// This package must never panic on bytes that came from outside: every
// decoder returns an error wrapping one of the sentinel errors instead, and
// is fuzzed.
package kbatch
