package ingest

// ShareFetch: v1-v2 served (KIP-932, Kafka 4.2; v0 was early access).
// * Sent to partition leaders. The share partition's state (ingest/share)
//   lives with the leader and is stored in etcd before any answer: a record
//   is acquired by one member until it acknowledges it or its lock
//   (share.record.lock.duration.ms) ends.
// * Share sessions per (group, member) on this node: epoch 0 opens one with
//   the request's partitions (records the member held on partitions of an
//   earlier session that the new one drops are released); epoch n > 0 must
//   be the session's next epoch (INVALID_SHARE_SESSION_EPOCH otherwise,
//   SHARE_SESSION_NOT_FOUND without a session) and adds Topics, removes
//   ForgottenTopicsData; epoch -1 applies the acknowledgements, releases the
//   member's records and closes the session, fetching nothing.
// * Piggybacked acknowledgements are applied first, all or nothing per
//   partition: AcknowledgeErrorCode INVALID_RECORD_STATE when a record is not
//   acquired by the member, INVALID_REQUEST when malformed.
// * Each session partition then acquires up to MaxRecords (v1; 500 when 0)
//   records, whole batches, at most MaxBytes: records released or whose lock
//   ended first, then new ones. AcquiredRecords lists the offsets handed
//   out with their delivery counts; Records holds the batches with them
//   (the client ignores records outside AcquiredRecords).
// * Nothing acquired: wait up to MaxWaitMillis for new records, a release
//   or a lock's end.
// * A partition this node does not lead: NOT_LEADER_OR_FOLLOWER with the
//   current leader and NodeEndpoints. IsRenewAck (v2): acknowledgements only
//   (type 4 renews locks), no fetching.
// * BatchSize and ShareAcquireMode (KIP-1206) are accepted and ignored:
//   records are acquired in whole batches.

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/ingest/share"
	"github.com/strata-io/strata/metadata"
)

// defaultShareMaxRecords is what a ShareFetch with MaxRecords 0 acquires at
// most (Kafka's share.max.fetch.records default).
const defaultShareMaxRecords = 500

func (s *Server) handleShareFetch(r *request, req *kmsg.ShareFetchRequest) func(context.Context) kmsg.Response {
	return func(ctx context.Context) kmsg.Response { return s.shareFetch(ctx, r, req) }
}

// sharePartResp finds or adds a partition's entry in a ShareFetch response.
type shareFetchResp struct {
	resp  *kmsg.ShareFetchResponse
	index map[metadata.TopicPartitionID]int
	leads []int32
}

func (b *shareFetchResp) part(id metadata.TopicID, p int32) *kmsg.ShareFetchResponseTopicPartition {
	k := metadata.TopicPartitionID{ID: id, Partition: p}
	if i, ok := b.index[k]; ok {
		ti, pi := i>>20, i&(1<<20-1)
		return &b.resp.Topics[ti].Partitions[pi]
	}
	ti := -1
	for i := range b.resp.Topics {
		if b.resp.Topics[i].TopicID == id {
			ti = i
		}
	}
	if ti < 0 {
		t := kmsg.NewShareFetchResponseTopic()
		t.TopicID = id
		b.resp.Topics = append(b.resp.Topics, t)
		ti = len(b.resp.Topics) - 1
	}
	sp := kmsg.NewShareFetchResponseTopicPartition()
	sp.Partition = p
	sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = -1, -1
	b.resp.Topics[ti].Partitions = append(b.resp.Topics[ti].Partitions, sp)
	pi := len(b.resp.Topics[ti].Partitions) - 1
	b.index[k] = ti<<20 | pi
	return &b.resp.Topics[ti].Partitions[pi]
}

func (s *Server) shareFetch(ctx context.Context, r *request, req *kmsg.ShareFetchRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ShareFetchResponse)
	b := &shareFetchResp{resp: resp, index: map[metadata.TopicPartitionID]int{}}
	group, member := deref(req.GroupID), deref(req.MemberID)
	if group == "" || member == "" || len(member) > 36 {
		resp.ErrorCode = kerr.InvalidRequest.Code
		resp.ErrorMessage = kmsg.StringPtr("a share fetch needs a group id and a member id of at most 36 characters")
		return resp
	}
	cfg := s.groupConfig(ctx, group)
	scfg := shareConfig(cfg)
	resp.AcquisitionLockTimeoutMillis = int32(scfg.LockDuration / time.Millisecond)
	renew := req.Version >= 2 && req.IsRenewAck

	// The session.
	var sess *share.Session
	switch {
	case req.ShareSessionEpoch == 0:
		var old *share.Session
		sess, old = s.shares.OpenSession(group, member)
		if old != nil {
			keep := map[metadata.TopicPartitionID]bool{}
			for _, t := range req.Topics {
				for _, p := range t.Partitions {
					keep[metadata.TopicPartitionID{ID: t.TopicID, Partition: p.Partition}] = true
				}
			}
			for k := range old.Parts {
				if !keep[k] {
					s.releaseShare(ctx, group, member, k)
				}
			}
		}
	case req.ShareSessionEpoch == -1:
		s.shareAcks(ctx, group, member, renew, shareFetchAcks(req), func(id metadata.TopicID, p int32, code int16) {
			b.part(id, p).AcknowledgeErrorCode = code
		})
		sess = s.shares.CloseSession(group, member)
		if sess == nil {
			resp.ErrorCode = kerr.ShareSessionNotFound.Code
			return resp
		}
		for k := range sess.Parts {
			s.releaseShare(ctx, group, member, k)
		}
		return resp
	default:
		var err error
		if sess, err = s.shares.UseSession(group, member, req.ShareSessionEpoch); err != nil {
			resp.ErrorCode = kerr.InvalidShareSessionEpoch.Code
			if errors.Is(err, share.ErrSessionNotFound) {
				resp.ErrorCode = kerr.ShareSessionNotFound.Code
			}
			return resp
		}
	}
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			sess.Parts[metadata.TopicPartitionID{ID: t.TopicID, Partition: p.Partition}] = struct{}{}
		}
	}
	for _, t := range req.ForgottenTopicsData {
		for _, p := range t.Partitions {
			k := metadata.TopicPartitionID{ID: t.TopicID, Partition: p}
			if _, ok := sess.Parts[k]; ok {
				delete(sess.Parts, k)
				s.releaseShare(ctx, group, member, k)
			}
		}
	}
	defer s.shares.Bump(sess)

	// Acknowledgements first.
	s.shareAcks(ctx, group, member, renew, shareFetchAcks(req), func(id metadata.TopicID, p int32, code int16) {
		b.part(id, p).AcknowledgeErrorCode = code
	})
	if renew {
		return resp
	}

	maxRecords := int(req.MaxRecords)
	if maxRecords <= 0 {
		maxRecords = defaultShareMaxRecords
	}
	maxBytes := int(min(int64(max(req.MaxBytes, 0)), maxFetchResponseBytes))
	if maxBytes == 0 {
		maxBytes = maxFetchResponseBytes
	}
	deadline := r.arrived.Add(time.Duration(max(req.MaxWaitMillis, 0)) * time.Millisecond)
	parts := make([]metadata.TopicPartitionID, 0, len(sess.Parts))
	for k := range sess.Parts {
		parts = append(parts, k)
		b.part(k.ID, k.Partition) // every session partition is answered
	}
	// Start at a different partition each time, so one busy partition
	// does not starve the others.
	if n := len(parts); n > 1 {
		rot := int(sess.Epoch) % n
		parts = append(parts[rot:], parts[:rot]...)
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		got, bytes := 0, 0
		var waits []<-chan struct{}
		var nextLock time.Time
		for _, k := range parts {
			sp := b.part(k.ID, k.Partition)
			if sp.ErrorCode != 0 {
				continue
			}
			if got >= maxRecords || bytes >= maxBytes {
				break
			}
			n, nb, wait, lock := s.shareAcquire(ctx, group, member, scfg, cfg, k, sp, maxRecords-got, maxBytes-bytes, b)
			got += n
			bytes += nb
			waits = append(waits, wait...)
			if !lock.IsZero() && (nextLock.IsZero() || lock.Before(nextLock)) {
				nextLock = lock
			}
		}
		if got > 0 || len(waits) == 0 || !time.Now().Before(deadline) || ctx.Err() != nil {
			break
		}
		until := deadline
		if !nextLock.IsZero() && nextLock.Before(until) {
			until = nextLock.Add(time.Millisecond)
		}
		if timer == nil {
			timer = time.NewTimer(time.Until(until))
		} else {
			timer.Reset(time.Until(until))
		}
		if !waitAny(ctx, waits, timer.C, s.draining) && !time.Now().Before(deadline) {
			break
		}
	}
	for _, n := range s.leaderEndpoints(r.listener, b.leads) {
		ne := kmsg.NewShareFetchResponseNodeEndpoint()
		ne.NodeID, ne.Host, ne.Port, ne.Rack = n.id, n.host, n.port, n.rack
		resp.NodeEndpoints = append(resp.NodeEndpoints, ne)
	}
	return resp
}

// shareAcquire acquires records of one partition into sp and returns how
// many records and bytes, the channels to wait on when there were none, and
// when the partition's next lock ends.
func (s *Server) shareAcquire(ctx context.Context, group, member string, scfg share.Config, cfg map[string]string, k metadata.TopicPartitionID, sp *kmsg.ShareFetchResponseTopicPartition, maxRecords, maxBytes int, b *shareFetchResp) (int, int, []<-chan struct{}, time.Time) {
	t, ok := s.meta.TopicByID(k.ID)
	if !ok {
		sp.ErrorCode = kerr.UnknownTopicID.Code
		return 0, 0, nil, time.Time{}
	}
	if k.Partition < 0 || k.Partition >= t.Partitions {
		sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
		return 0, 0, nil, time.Time{}
	}
	tp := metadata.TP{Topic: t.Name, Partition: k.Partition}
	tpart, err := s.tier.Partition(ctx, tp)
	if err != nil {
		s.shareLeaderError(sp, tp, errCode(err), b)
		return 0, 0, nil, time.Time{}
	}
	reset := groupConfigValue(cfg, "share.auto.offset.reset")
	part, err := s.shares.Partition(ctx, share.Key{Group: group, Topic: k.ID, Partition: k.Partition}, tpart.Leadership(), scfg, func() (int64, error) {
		if reset == "earliest" {
			return tpart.LogStartOffset(), nil
		}
		return tpart.HighWatermark(), nil
	})
	if err != nil {
		s.shareStateError(sp, tp, err, b)
		return 0, 0, nil, time.Time{}
	}
	changed := tpart.Changed()
	read := func(ctx context.Context, offset int64, maxBytes int) ([]byte, int64, int64, error) {
		res, err := tpart.ReadIsolated(ctx, offset, maxBytes, true, false)
		if err != nil {
			return nil, 0, 0, err
		}
		return res.Batches, res.HighWatermark, res.LogStartOffset, nil
	}
	batches, ranges, err := part.Acquire(ctx, member, maxRecords, maxBytes, read)
	if err != nil {
		s.shareStateError(sp, tp, err, b)
		return 0, 0, nil, time.Time{}
	}
	n := 0
	for _, rg := range ranges {
		ar := kmsg.NewShareFetchResponseTopicPartitionAcquiredRecord()
		ar.FirstOffset, ar.LastOffset, ar.DeliveryCount = rg.First, rg.Last, rg.Count
		sp.AcquiredRecords = append(sp.AcquiredRecords, ar)
		n += int(rg.Last - rg.First + 1)
	}
	if len(batches) > 0 {
		sp.Records = batches
		s.traffic.shared(t.Name, k.Partition, len(batches), n)
	}
	if n > 0 {
		return n, len(batches), nil, time.Time{}
	}
	notify, lock := part.Wait()
	return 0, 0, []<-chan struct{}{changed, notify}, lock
}

// shareLeaderError answers a partition this node cannot serve.
func (s *Server) shareLeaderError(sp *kmsg.ShareFetchResponseTopicPartition, tp metadata.TP, code int16, b *shareFetchResp) {
	sp.ErrorCode = code
	if code == kerr.NotLeaderForPartition.Code {
		if l, ok := s.meta.Leader(tp); ok {
			sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = l.NodeID, l.Epoch
			b.leads = append(b.leads, l.NodeID)
		}
	}
}

// shareStateError answers a failure to load or store share state.
func (s *Server) shareStateError(sp *kmsg.ShareFetchResponseTopicPartition, tp metadata.TP, err error, b *shareFetchResp) {
	if share.IsFenced(err) {
		s.shareLeaderError(sp, tp, kerr.NotLeaderForPartition.Code, b)
		return
	}
	s.log.Warn("share partition state", "topic", tp.Topic, "partition", tp.Partition, "err", err)
	sp.ErrorCode = kerr.KafkaStorageError.Code
}

// shareAckPart is one partition's acknowledgement batches.
type shareAckPart struct {
	id      metadata.TopicID
	p       int32
	batches []share.AckBatch
}

func shareFetchAcks(req *kmsg.ShareFetchRequest) []shareAckPart {
	var out []shareAckPart
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			if len(p.AcknowledgementBatches) == 0 {
				continue
			}
			ap := shareAckPart{id: t.TopicID, p: p.Partition}
			for _, ab := range p.AcknowledgementBatches {
				ap.batches = append(ap.batches, share.AckBatch{First: ab.FirstOffset, Last: ab.LastOffset, Types: ab.AcknowledgeTypes})
			}
			out = append(out, ap)
		}
	}
	return out
}

// shareAcks applies acknowledgements, reporting each partition's result
// through done (code 0: applied).
func (s *Server) shareAcks(ctx context.Context, group, member string, renew bool, acks []shareAckPart, done func(id metadata.TopicID, p int32, code int16)) {
	if len(acks) == 0 {
		return
	}
	scfg := shareConfig(s.groupConfig(ctx, group))
	for _, a := range acks {
		done(a.id, a.p, s.shareAck(ctx, group, member, renew, scfg, a))
	}
}

func (s *Server) shareAck(ctx context.Context, group, member string, renew bool, scfg share.Config, a shareAckPart) int16 {
	t, ok := s.meta.TopicByID(a.id)
	if !ok {
		return kerr.UnknownTopicID.Code
	}
	if a.p < 0 || a.p >= t.Partitions {
		return kerr.UnknownTopicOrPartition.Code
	}
	tpart, err := s.tier.Partition(ctx, metadata.TP{Topic: t.Name, Partition: a.p})
	if err != nil {
		return errCode(err)
	}
	part, err := s.shares.Partition(ctx, share.Key{Group: group, Topic: a.id, Partition: a.p}, tpart.Leadership(), scfg, func() (int64, error) {
		return tpart.HighWatermark(), nil
	})
	if err != nil {
		return shareErrCode(err)
	}
	return shareErrCode(part.Acknowledge(ctx, member, a.batches, renew))
}

func shareErrCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, share.ErrInvalidRecordState):
		return kerr.InvalidRecordState.Code
	case errors.Is(err, share.ErrInvalidRequest):
		return kerr.InvalidRequest.Code
	case share.IsFenced(err):
		return kerr.NotLeaderForPartition.Code
	}
	return kerr.KafkaStorageError.Code
}

// releaseShare releases the records member holds on one partition (its
// session closed or dropped the partition). Best effort: locks end anyway.
func (s *Server) releaseShare(ctx context.Context, group, member string, k metadata.TopicPartitionID) {
	if p, ok := s.shares.Held(share.Key{Group: group, Topic: k.ID, Partition: k.Partition}); ok {
		p.ReleaseMember(ctx, member)
	}
}
