package ingest

// OffsetCommit: v0-v9 served
// * Advertised from v0: librdkafka 2.0.2 looks for v1-v2 inside the range
//   before it enables groups, kafkajs stops at v5; v10 (topic ids) is not
//   served.
// * The offsets are stored in etcd before the answer (ingest/group, keys in
//   metadata/KEYS.md), with their metadata string and leader epoch (v6+).
// * A member must be current: ILLEGAL_GENERATION for a stale generation,
//   UNKNOWN_MEMBER_ID for an unknown member, FENCED_INSTANCE_ID (v7+) for a
//   replaced static member, REBALANCE_IN_PROGRESS between join and sync.
//   Generation -1 with no member is a "simple" commit, taken only by a
//   group without members (kcat, sarama and librdkafka manual commits).
// * Unknown topics or partitions: UNKNOWN_TOPIC_OR_PARTITION; metadata over
//   4 KiB: OFFSET_METADATA_TOO_LARGE; etcd failing: COORDINATOR_NOT_AVAILABLE.
// * The v1 timestamp and v2-v4 retention are ignored: offsets never expire.
// * Runs on the connection's writer, in request order with the group's other
//   requests (as Kafka serves one request per connection at a time).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleOffsetCommit(req *kmsg.OffsetCommitRequest) func(context.Context) kmsg.Response {
	return func(ctx context.Context) kmsg.Response { return s.groups.OffsetCommit(ctx, req) }
}
