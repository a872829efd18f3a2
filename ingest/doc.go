// Package ingest is Strata's Kafka protocol server: it accepts client
// connections, frames and parses requests, dispatches them to one handler per
// API key and writes the responses back in request order.
//
// It owns:
//   - connections: one reader and one writer goroutine each, pipelining up to
//     Config.MaxInFlightPerConn requests while keeping responses in order;
//   - the request header and framing (a 4-byte size, then a v1 or v2 request
//     header) — bodies are decoded and responses encoded only with
//     github.com/twmb/franz-go/pkg/kmsg, after skim.go has checked a body's
//     lengths, counts and tagged fields (kmsg can spin for minutes on a
//     forged tag count, and allocates arrays at the length claimed);
//   - the table of API versions served (versions.go), the single source for
//     both the ApiVersions answer and for rejecting requests;
//   - fetch sessions (KIP-227, fetchsession.go): per node, in memory, at
//     most Config.FetchSessionCacheSlots (1000) sessions holding 2^20
//     partitions in all; a session unused for 2 minutes is evicted, and a
//     full fetch finding the cache full is answered without one;
//   - the mapping from Strata's internal errors to Kafka error codes
//     (github.com/twmb/franz-go/pkg/kerr): nothing below ingest knows a Kafka
//     error code.
//
// It must never:
//   - hand-encode anything kmsg encodes, or trust a client's bytes without
//     validation (record batches go through kbatch.Validate before they reach
//     the tier);
//   - panic on bad input: a malformed frame closes the connection, a bad
//     batch fails only its own partition;
//   - answer an acks=all produce before the tier reports the batch durable,
//     or answer an acks=0 produce at all;
//   - keep data of its own: topics live in metadata, records in tier.
package ingest
