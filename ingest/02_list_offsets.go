package ingest

// ListOffsets: v1-v11 served (v0's offsets-before-time form is not, as in Kafka 4.0)
// * -1 latest: the high watermark (durable end), with our leader epoch; the
//   last stable offset for read_committed.
// * -2 earliest and -4 earliest-local (v8+): the log start offset.
// * -3 max timestamp (v7+): the first record with the largest timestamp, and
//   that timestamp (offset -1, timestamp -1 for an empty partition).
// * -5 latest-tiered (v9+) and -6 earliest-pending-upload (v11+): -1, as a
//   broker without Kafka tiered storage answers; Strata's object store is
//   its only log, not a remote tier.
// * A timestamp >= 0: the first offset whose record timestamp is >= it, from
//   the tier; none is offset -1, timestamp -1, as Kafka answers.
// * Any other negative timestamp, or a special one below the version that
//   introduced it, is UNSUPPORTED_VERSION; a partition listed twice is
//   INVALID_REQUEST for each entry (both as Kafka).
// * CurrentLeaderEpoch (v4+): above ours UNKNOWN_LEADER_EPOCH, below ours
//   FENCED_LEADER_EPOCH, -1 unchecked.
// * The leader epoch returned with a historical offset is -1 (unknown): we do
//   not track the epoch of each record, and -1 is what clients expect then.
// * IsolationLevel 1 (read_committed, v2+): latest is the last stable
//   offset instead of the high watermark.
// * TimeoutMillis (v10+) is not needed: lookups do not wait on remote storage
//   beyond the request itself.
// * The internal topic __consumer_offsets (internal_topics.go) is an empty
//   partition, not an error: latest and earliest are 0 (latest with leader
//   epoch 0), every other lookup finds nothing (offset -1, timestamp -1). A
//   partition it does not have is UNKNOWN_TOPIC_OR_PARTITION.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
)

// listOffsetsMinVersion is the first ListOffsets version of each special
// timestamp (Kafka's ReplicaManager).
var listOffsetsMinVersion = map[int64]int16{
	-1: 1, // latest
	-2: 1, // earliest
	-3: 7, // max timestamp
	-4: 8, // earliest local
	-5: 9, // latest tiered
	-6: 11,
}

func (s *Server) handleListOffsets(ctx context.Context, req *kmsg.ListOffsetsRequest) *kmsg.ListOffsetsResponse {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	seen := make(map[metadata.TP]int)
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			seen[metadata.TP{Topic: rt.Topic, Partition: rp.Partition}]++
		}
	}
	resp.Topics = make([]kmsg.ListOffsetsResponseTopic, 0, len(req.Topics))
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.ListOffsetsResponseTopicPartition, 0, len(rt.Partitions))
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			tp := metadata.TP{Topic: rt.Topic, Partition: rp.Partition}
			s.listOffset(ctx, req.Version, req.IsolationLevel == 1, tp, rp, seen[tp] > 1, &sp)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// listOffset answers one partition into sp, whose defaults (offset -1,
// timestamp -1, epoch -1) stand for "no answer".
func (s *Server) listOffset(ctx context.Context, version int16, committed bool, tp metadata.TP, rp kmsg.ListOffsetsRequestTopicPartition, dup bool, sp *kmsg.ListOffsetsResponseTopicPartition) {
	if dup {
		sp.ErrorCode = kerr.InvalidRequest.Code
		return
	}
	if minV, ok := listOffsetsMinVersion[rp.Timestamp]; rp.Timestamp < 0 && (!ok || version < minV) {
		sp.ErrorCode = kerr.UnsupportedVersion.Code
		return
	}
	if t, ok := internalTopic(tp.Topic); ok {
		listInternalOffset(t, tp.Partition, rp, sp)
		return
	}
	p, err := s.tier.Partition(ctx, tp)
	if err != nil {
		sp.ErrorCode = errCode(err)
		return
	}
	if code := checkLeaderEpoch(rp.CurrentLeaderEpoch, p.LeaderEpoch()); code != 0 {
		sp.ErrorCode = code
		return
	}
	switch rp.Timestamp {
	case -1:
		sp.Offset = p.HighWatermark()
		if committed {
			sp.Offset = p.LastStableOffset()
		}
		sp.LeaderEpoch = p.LeaderEpoch()
	case -2, -4:
		sp.Offset = p.LogStartOffset()
	case -3:
		offset, ts, found, err := p.MaxTimestampOffset(ctx)
		if err != nil {
			sp.ErrorCode = errCode(err)
			return
		}
		if found {
			sp.Offset, sp.Timestamp = offset, ts
			sp.LeaderEpoch = p.LeaderEpoch()
		}
	case -5, -6:
		// See the header comment: no answer, which is not an error.
	default:
		offset, ts, found, err := p.OffsetForTimestamp(ctx, rp.Timestamp)
		if err != nil {
			sp.ErrorCode = errCode(err)
			return
		}
		if found {
			sp.Offset = offset
			sp.Timestamp = ts
		}
	}
}

// listInternalOffset answers one partition of an internal topic, which is
// always empty.
func listInternalOffset(t metadata.Topic, partition int32, rp kmsg.ListOffsetsRequestTopicPartition, sp *kmsg.ListOffsetsResponseTopicPartition) {
	if partition < 0 || partition >= t.Partitions {
		sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
		return
	}
	if code := checkLeaderEpoch(rp.CurrentLeaderEpoch, internalLeaderEpoch); code != 0 {
		sp.ErrorCode = code
		return
	}
	switch rp.Timestamp {
	case -1:
		sp.Offset, sp.LeaderEpoch = 0, internalLeaderEpoch
	case -2, -4:
		sp.Offset = 0
	}
}

// checkLeaderEpoch applies KIP-320's check of a client's CurrentLeaderEpoch
// against ours: -1 means the client does not know it.
func checkLeaderEpoch(client, ours int32) int16 {
	switch {
	case client == -1:
		return 0
	case client > ours:
		return kerr.UnknownLeaderEpoch.Code
	case client < ours:
		return kerr.FencedLeaderEpoch.Code
	}
	return 0
}
