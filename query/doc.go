// Package query serves Strata topics as tables: it reads a partition's
// durable records straight from the object store (through the etcd index) and
// converts them to Apache Arrow record batches of one fixed schema (Schema:
// topic, partition, offset, timestamp, key, value, headers).
//
// Three layers, each usable alone:
//
//   - Reader: Scan streams the records of one partition in an offset and/or
//     time Range, holding one index entry's run (a few MiB) at a time.
//     Because every durable record is in the object store and indexed in
//     etcd, it needs no leadership: any node reads any partition, and a
//     reader never touches the broker's hot path.
//   - Converter and Reader.ScanArrow: records to Arrow batches bounded in
//     rows and bytes; optionally (decode=json) with typed columns inferred
//     from a sample of JSON object values (InferJSON) after the default
//     ones.
//   - Surfaces: NewHTTPHandler (an Arrow IPC stream over HTTP, mounted by
//     cmd/node next to /metrics) and FlightServer (Arrow Flight: one endpoint
//     per partition, DoGet streams a partition's range). `strata export`
//     turns the HTTP stream into an Arrow IPC or Parquet file.
//
// It must never write: not to the object store, not to etcd, not to the
// hot tier. It must never return a record at or above the high watermark or
// below the log start offset, and never hold more than one run of a
// partition in memory per scan. Request parameters come from outside and
// are checked (ErrInvalidRange) before any I/O.
package query
