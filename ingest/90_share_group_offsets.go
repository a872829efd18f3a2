package ingest

// DescribeShareGroupOffsets (90, v0-v1), AlterShareGroupOffsets (91, v0) and
// DeleteShareGroupOffsets (92, v0): a share group's start offset per
// partition, read from and written to the share-partition state in etcd
// (metadata.LoadShareState, ResetShareState, DeleteShareState). All three go
// to the group's coordinator (NOT_COORDINATOR elsewhere).
// * Describe: each named partition (all the group has state for when Topics
//   is null) with its start offset, the leader epoch (-1) and, from v1, the
//   lag: records from the start offset to the high watermark that are not
//   yet acknowledged or archived. A partition the group never fetched has
//   start offset -1.
// * Alter: only while the group has no members (NON_EMPTY_GROUP); sets the
//   start offset and forgets the delivery state of the partition; the
//   leader loads the new state at its next write. An offset outside the log
//   is stored as asked and clamped to the log start when fetched.
// * Delete: forgets every partition of the named topics (NON_EMPTY_GROUP
//   with members): the group starts again per share.auto.offset.reset.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/ingest/share"
	"github.com/strata-io/strata/metadata"
)

func (s *Server) handleDescribeShareGroupOffsets(ctx context.Context, req *kmsg.DescribeShareGroupOffsetsRequest) *kmsg.DescribeShareGroupOffsetsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeShareGroupOffsetsResponse)
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	for _, rg := range req.Groups {
		g := kmsg.NewDescribeShareGroupOffsetsResponseGroup()
		g.GroupID = rg.GroupID
		switch {
		case rg.GroupID == "":
			g.ErrorCode = kerr.InvalidGroupID.Code
		case !s.groups.Owns(rg.GroupID):
			g.ErrorCode = kerr.NotCoordinator.Code
		default:
			g.Topics, g.ErrorCode = s.describeShareOffsets(ctx, rg)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp
}

func (s *Server) describeShareOffsets(ctx context.Context, rg kmsg.DescribeShareGroupOffsetsRequestGroup) ([]kmsg.DescribeShareGroupOffsetsResponseGroupTopic, int16) {
	type want struct {
		topic string
		parts []int32
	}
	var wants []want
	if rg.Topics == nil {
		have, err := s.meta.SharePartitions(ctx, rg.GroupID)
		if err != nil {
			return nil, kerr.CoordinatorNotAvailable.Code
		}
		byTopic := map[string][]int32{}
		var order []string
		for _, k := range have {
			t, ok := s.meta.TopicByID(k.ID)
			if !ok {
				continue
			}
			if _, seen := byTopic[t.Name]; !seen {
				order = append(order, t.Name)
			}
			byTopic[t.Name] = append(byTopic[t.Name], k.Partition)
		}
		for _, t := range order {
			wants = append(wants, want{t, byTopic[t]})
		}
	} else {
		for _, t := range rg.Topics {
			wants = append(wants, want{t.Topic, t.Partitions})
		}
	}
	var out []kmsg.DescribeShareGroupOffsetsResponseGroupTopic
	for _, w := range wants {
		rt := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopic()
		rt.Topic = w.topic
		t, known := s.meta.Topic(w.topic)
		if known {
			rt.TopicID = t.ID
		}
		for _, p := range w.parts {
			rp := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopicPartition()
			rp.Partition, rp.LeaderEpoch, rp.StartOffset, rp.Lag = p, -1, -1, -1
			if !known || p < 0 || p >= t.Partitions {
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				rt.Partitions = append(rt.Partitions, rp)
				continue
			}
			st, found, err := s.ShareStats(ctx, rg.GroupID, metadata.TP{Topic: t.Name, Partition: p})
			switch {
			case err != nil:
				rp.ErrorCode = kerr.CoordinatorNotAvailable.Code
			case found:
				rp.StartOffset = st.Start
				rp.Lag = st.Lag
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		out = append(out, rt)
	}
	return out, 0
}

// ShareStats is a share partition's backlog as stored in etcd: its start
// offset, the records in flight (delivered or deliverable, not yet
// acknowledged or archived) and the lag (those plus everything up to the
// high watermark not yet delivered). found is false when the group never
// fetched the partition.
type ShareStats struct {
	Start    int64
	End      int64
	InFlight int64
	Acquired int64
	Lag      int64
}

// ShareStats reads tp's share state of group from etcd.
func (s *Server) ShareStats(ctx context.Context, group string, tp metadata.TP) (ShareStats, bool, error) {
	t, ok := s.meta.Topic(tp.Topic)
	if !ok {
		return ShareStats{}, false, nil
	}
	ld, err := s.meta.LoadShareState(ctx, group, t.ID, tp.Partition)
	if err != nil || !ld.Found {
		return ShareStats{}, false, err
	}
	st := share.StoredStats(ld)
	out := ShareStats{Start: st.Start, End: st.End, InFlight: int64(st.InFlight)}
	// The leader's own view has the locks, which etcd does not keep.
	if p, ok := s.shares.Held(share.Key{Group: group, Topic: t.ID, Partition: tp.Partition}); ok && s.leadsShare(t.Name, tp.Partition, p) {
		live := p.Stats()
		out.Start, out.End, out.InFlight, out.Acquired = live.Start, live.End, int64(live.InFlight), int64(live.Acquired)
	}
	hw := out.End
	if sum, ok := s.meta.IndexSummary(tp); ok && sum.End > hw {
		hw = sum.End
	}
	out.Lag = out.InFlight + max(hw-out.End, 0)
	return out, true, nil
}

func (s *Server) handleAlterShareGroupOffsets(ctx context.Context, req *kmsg.AlterShareGroupOffsetsRequest) *kmsg.AlterShareGroupOffsetsResponse {
	resp := req.ResponseKind().(*kmsg.AlterShareGroupOffsetsResponse)
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	if code := s.shareAdminCheck(req.GroupID); code != 0 {
		resp.ErrorCode = code
		return resp
	}
	for _, rt := range req.Topics {
		ot := kmsg.NewAlterShareGroupOffsetsResponseTopic()
		ot.Topic = rt.Topic
		t, known := s.meta.Topic(rt.Topic)
		if known {
			ot.TopicID = t.ID
		}
		for _, rp := range rt.Partitions {
			op := kmsg.NewAlterShareGroupOffsetsResponseTopicPartition()
			op.Partition = rp.Partition
			switch {
			case !known || rp.Partition < 0 || rp.Partition >= t.Partitions:
				op.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case rp.StartOffset < 0:
				op.ErrorCode = kerr.InvalidRequest.Code
				op.ErrorMessage = kmsg.StringPtr("the start offset must not be negative")
			default:
				if err := s.meta.ResetShareState(ctx, req.GroupID, t.ID, rp.Partition, rp.StartOffset); err != nil {
					op.ErrorCode = kerr.CoordinatorNotAvailable.Code
				}
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp
}

func (s *Server) handleDeleteShareGroupOffsets(ctx context.Context, req *kmsg.DeleteShareGroupOffsetsRequest) *kmsg.DeleteShareGroupOffsetsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteShareGroupOffsetsResponse)
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	if code := s.shareAdminCheck(req.GroupID); code != 0 {
		resp.ErrorCode = code
		return resp
	}
	for _, rt := range req.Topics {
		ot := kmsg.NewDeleteShareGroupOffsetsResponseTopic()
		ot.Topic = rt.Topic
		t, known := s.meta.Topic(rt.Topic)
		if !known {
			ot.ErrorCode = kerr.UnknownTopicOrPartition.Code
			resp.Topics = append(resp.Topics, ot)
			continue
		}
		ot.TopicID = t.ID
		for p := int32(0); p < t.Partitions; p++ {
			if err := s.meta.DeleteShareState(ctx, req.GroupID, t.ID, p); err != nil {
				ot.ErrorCode = kerr.CoordinatorNotAvailable.Code
				break
			}
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp
}

// shareAdminCheck refuses changes to a share group's offsets unless this
// node coordinates it and it has no members.
func (s *Server) shareAdminCheck(group string) int16 {
	if group == "" {
		return kerr.InvalidGroupID.Code
	}
	n, coordinated := s.groups.ShareMembers(group)
	if !coordinated {
		return kerr.NotCoordinator.Code
	}
	if n > 0 {
		return kerr.NonEmptyGroup.Code
	}
	return 0
}
