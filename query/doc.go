// Package query serves Strata topics as tables: it reads a partition's
// durable records straight from the object store (through the etcd index) and
// converts them to Apache Arrow record batches of one fixed schema (Schema:
// topic, partition, offset, timestamp, key, value, headers).
//
// Three layers, each usable alone:
//
//   - Reader: Scan streams the records of one partition in an offset and/or
//     time Range, holding one index entry's run (a few MiB) at a time and
//     walking it block by block (blocks before the range are skipped
//     unread). Because every durable record is in the object store and
//     indexed in etcd, it needs no leadership: any node reads any
//     partition, and a reader never touches the broker's hot path.
//   - Converter and Reader.ScanArrow: records to Arrow batches bounded in
//     rows and bytes (DefaultBatchRows, DefaultBatchBytes), written straight
//     into the Arrow buffers and, by default, into the buffers of batches
//     already released (see recycler); optionally (decode=json) with typed
//     columns inferred from a sample of JSON object values (InferJSON)
//     after the default ones. ScanArrow reads and converts ahead of its
//     caller on a worker goroutine per two processors, one partition each,
//     but delivers the partitions in turn, each in offset order.
//   - Surfaces: NewHTTPHandler (an Arrow IPC stream, and the same as a
//     Parquet file, over HTTP, mounted by cmd/node next to /metrics) and
//     FlightServer (Arrow Flight: one endpoint per partition, DoGet streams
//     a partition's range). `strata export` turns the HTTP stream into an
//     Arrow IPC or Parquet file.
//
// Parquet (ParquetWriter, used by the HTTP endpoint and `strata export`) is
// zstd at its fastest level, without dictionaries, with offsets and
// timestamps delta-encoded, in row groups of at most ParquetRowGroupRows
// rows (1 Mi) and ParquetRowGroupBytes bytes of Arrow data (64 MiB): the
// writer holds the batches of one row group and writes it out column by
// column when the next batch would pass a bound, so an export's memory is
// bounded by a row group (about twice its bytes, with the encoder's
// buffers and the batches in flight), whatever the size of the topic.
//
// It must never write: not to the object store, not to etcd, not to the
// hot tier. It must never return a record at or above the high watermark or
// below the log start offset, and never hold more than one run of a
// partition in memory per scan. Request parameters come from outside and
// are checked (ErrInvalidRange) before any I/O.
package query
