// Package objstore owns Strata's object stores: the Bucket interface, a
// filesystem store for the single-binary default, an S3 store (AWS S3 and
// MinIO through aws-sdk-go-v2), the retry policy that rides out a flaky or
// briefly unavailable store, and a metrics decorator (Instrument).
//
// Open picks the implementation from a URL:
//
//	file:///abs/path
//	s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1&path_style=true
//
// Every implementation passes the same acceptance suite
// (objstore/objstoretest.AcceptanceTest), so callers can rely on the contract
// written on Bucket and nothing more: atomic durable Puts, read-after-write,
// idempotent Deletes, lexical List order, wrapped ErrNotFound, and prompt
// return on ctx cancellation.
//
// What this package must never do: know about segments, partitions or any
// other Strata concept (keys are opaque strings), keep a context in a struct,
// register metrics anywhere but on a Registerer it is handed, retry without a
// bound, or let a reader see a partially written object.
package objstore
