package group

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
)

// TxnOffsetCommit handles TxnOffsetCommit (v0-v4): offsets a transaction
// commits for the group. They are stored in etcd as pending, under the
// producer id, and become the group's committed offsets only when the
// transaction commits (its coordinator applies them; an abort drops them).
// From v3 the member, generation and instance id are checked as an
// OffsetCommit's are (KIP-447), when the client sends them.
func (c *Coordinator) TxnOffsetCommit(ctx context.Context, req *kmsg.TxnOffsetCommitRequest) *kmsg.TxnOffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewTxnOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	setAll := func(code int16) *kmsg.TxnOffsetCommitResponse {
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				resp.Topics[i].Partitions[j].ErrorCode = code
			}
		}
		return resp
	}
	if req.Group == "" {
		return setAll(kerr.InvalidGroupID.Code)
	}
	g, code := c.lockOffsets(ctx, req.Group)
	if code != 0 {
		return setAll(code)
	}
	defer g.unlockOffsets()
	g.mu.Lock()
	if g.kind == "" || g.kind == kindConsumer {
		code = g.loadConsumerLocked()
	}
	switch {
	case code != 0:
	case req.Version < 3 || req.Generation < 0 && req.MemberID == "":
	case g.kind == kindConsumer:
		// A KIP-848 group: the generation is the member epoch, checked
		// as OffsetCommit checks it.
		code = g.consumerCommitCheckLocked(req.MemberID, req.Generation, txnCommitParts(req.Topics))
	default:
		code = g.validateMemberLocked(req.MemberID, req.InstanceID, false)
		if code == 0 && req.Generation != g.generation {
			code = kerr.IllegalGeneration.Code
		}
	}
	g.txnOffsets = true
	g.mu.Unlock()
	if code != 0 {
		return setAll(code)
	}
	offsets := make(map[metadata.TP]metadata.CommittedOffset)
	for i, t := range req.Topics {
		topic, known := c.store.Topic(t.Topic)
		for j, p := range t.Partitions {
			rp := &resp.Topics[i].Partitions[j]
			meta := ""
			if p.Metadata != nil {
				meta = *p.Metadata
			}
			switch {
			case !known || p.Partition < 0 || p.Partition >= topic.Partitions:
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case len(meta) > c.cfg.MaxMetadataBytes:
				rp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			default:
				offsets[metadata.TP{Topic: t.Topic, Partition: p.Partition}] = metadata.CommittedOffset{Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, Metadata: meta}
			}
		}
	}
	if len(offsets) == 0 {
		return resp
	}
	failOffsets := func(code int16) {
		for i, t := range req.Topics {
			for j, p := range t.Partitions {
				if _, ok := offsets[metadata.TP{Topic: t.Topic, Partition: p.Partition}]; ok {
					resp.Topics[i].Partitions[j].ErrorCode = code
				}
			}
		}
	}
	// The offsets are taken only for a transaction that is ongoing, with
	// the group added (AddOffsetsToTxn), and only while it stays so: an
	// offset written after its end would be pending for ever.
	ctx = context.WithoutCancel(ctx)
	for attempt := 0; ; attempt++ {
		st, found, err := c.store.GetTxn(ctx, req.TransactionalID)
		if err != nil {
			c.log.Warn("group: reading the transaction of transactional offsets", "group", req.Group, "err", err)
			failOffsets(kerr.CoordinatorNotAvailable.Code)
			return resp
		}
		switch {
		case !found || st.ProducerID != req.ProducerID:
			failOffsets(kerr.InvalidProducerIDMapping.Code)
			return resp
		case req.ProducerEpoch < st.ProducerEpoch:
			// PRODUCER_FENCED from v3 (KIP-588); older clients know only
			// INVALID_PRODUCER_EPOCH.
			code := kerr.ProducerFenced.Code
			if req.Version < 3 {
				code = kerr.InvalidProducerEpoch.Code
			}
			failOffsets(code)
			return resp
		case req.ProducerEpoch > st.ProducerEpoch:
			failOffsets(kerr.InvalidProducerEpoch.Code)
			return resp
		case st.State != metadata.TxnOngoing || !slices.Contains(st.Groups, req.Group):
			failOffsets(kerr.InvalidTxnState.Code)
			return resp
		}
		ok, err := c.store.PutTxnOffsets(ctx, req.Group, st, offsets)
		if err == nil && !ok && attempt < 5 {
			continue // the transaction changed (a partition added): look again
		}
		if err == nil && ok {
			return resp
		}
		c.log.Warn("group: storing transactional offsets", "group", req.Group, "err", err)
		failOffsets(kerr.CoordinatorNotAvailable.Code)
		return resp
	}
}

func txnCommitParts(ts []kmsg.TxnOffsetCommitRequestTopic) []commitPart {
	var out []commitPart
	for _, t := range ts {
		for _, p := range t.Partitions {
			out = append(out, commitPart{t.Topic, p.Partition})
		}
	}
	return out
}
