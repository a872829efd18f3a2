package ingest

// ShareAcknowledge: v1-v2 served (KIP-932).
// * Acknowledges records acquired through ShareFetch on this node: accept
//   (1), release (2, delivered again, or archived at the delivery limit),
//   reject (3), gap (0) and, from v2, renew (4: the lock starts again). All
//   or nothing per partition; stored in etcd before the answer.
// * The session epoch must be the share session's next one (0 is
//   INVALID_SHARE_SESSION_EPOCH: a session starts with ShareFetch); -1
//   closes the session after the acknowledgements and releases what the
//   member still holds.
// * Per partition: INVALID_RECORD_STATE (a record not acquired by this
//   member), INVALID_REQUEST (malformed batches), NOT_LEADER_OR_FOLLOWER
//   with the current leader, UNKNOWN_TOPIC_ID.

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/ingest/share"
	"github.com/strata-io/strata/metadata"
)

func (s *Server) handleShareAcknowledge(req *kmsg.ShareAcknowledgeRequest) func(context.Context) kmsg.Response {
	return func(ctx context.Context) kmsg.Response { return s.shareAcknowledge(ctx, req) }
}

func (s *Server) shareAcknowledge(ctx context.Context, req *kmsg.ShareAcknowledgeRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ShareAcknowledgeResponse)
	group, member := deref(req.GroupID), deref(req.MemberID)
	if group == "" || member == "" || len(member) > 36 {
		resp.ErrorCode = kerr.InvalidRequest.Code
		resp.ErrorMessage = kmsg.StringPtr("a share acknowledge needs a group id and a member id of at most 36 characters")
		return resp
	}
	if req.Version >= 2 {
		resp.AcquisitionLockTimeoutMillis = int32(shareConfig(s.groupConfig(ctx, group)).LockDuration / time.Millisecond)
	}
	var sess *share.Session
	switch {
	case req.ShareSessionEpoch == 0:
		resp.ErrorCode = kerr.InvalidShareSessionEpoch.Code
		return resp
	case req.ShareSessionEpoch > 0:
		var err error
		if sess, err = s.shares.UseSession(group, member, req.ShareSessionEpoch); err != nil {
			resp.ErrorCode = kerr.InvalidShareSessionEpoch.Code
			if errors.Is(err, share.ErrSessionNotFound) {
				resp.ErrorCode = kerr.ShareSessionNotFound.Code
			}
			return resp
		}
		defer s.shares.Bump(sess)
	}
	var acks []shareAckPart
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			ap := shareAckPart{id: t.TopicID, p: p.Partition}
			for _, ab := range p.AcknowledgementBatches {
				ap.batches = append(ap.batches, share.AckBatch{First: ab.FirstOffset, Last: ab.LastOffset, Types: ab.AcknowledgeTypes})
			}
			acks = append(acks, ap)
		}
	}
	renew := req.Version >= 2 && req.IsRenewAck
	var leaders bool
	s.shareAcks(ctx, group, member, renew, acks, func(id metadata.TopicID, p int32, code int16) {
		ti := -1
		for i := range resp.Topics {
			if resp.Topics[i].TopicID == id {
				ti = i
			}
		}
		if ti < 0 {
			t := kmsg.NewShareAcknowledgeResponseTopic()
			t.TopicID = id
			resp.Topics = append(resp.Topics, t)
			ti = len(resp.Topics) - 1
		}
		rp := kmsg.NewShareAcknowledgeResponseTopicPartition()
		rp.Partition, rp.ErrorCode = p, code
		rp.CurrentLeader.LeaderID, rp.CurrentLeader.LeaderEpoch = -1, -1
		if code == kerr.NotLeaderForPartition.Code {
			if t, ok := s.meta.TopicByID(id); ok {
				if l, ok := s.meta.Leader(metadata.TP{Topic: t.Name, Partition: p}); ok {
					rp.CurrentLeader.LeaderID, rp.CurrentLeader.LeaderEpoch = l.NodeID, l.Epoch
					leaders = true
				}
			}
		}
		resp.Topics[ti].Partitions = append(resp.Topics[ti].Partitions, rp)
	})
	if leaders {
		for _, n := range s.meta.Nodes() {
			ne := kmsg.NewShareAcknowledgeResponseNodeEndpoint()
			ne.NodeID, ne.Host, ne.Port = n.ID, n.Host, n.Port
			resp.NodeEndpoints = append(resp.NodeEndpoints, ne)
		}
	}
	if req.ShareSessionEpoch == -1 {
		if sess = s.shares.CloseSession(group, member); sess == nil {
			resp.ErrorCode = kerr.ShareSessionNotFound.Code
			return resp
		}
		for k := range sess.Parts {
			s.releaseShare(ctx, group, member, k)
		}
	}
	return resp
}
