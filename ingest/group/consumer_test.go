package group

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// hb848 sends a ConsumerGroupHeartbeat for member id at epoch, owning the
// partitions of t2 listed (nil: the owned list is left out).
func hb848(t *testing.T, c *Coordinator, group, id string, epoch int32, owned []int32) *kmsg.ConsumerGroupHeartbeatResponse {
	t.Helper()
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.SetVersion(1)
	req.Group, req.MemberID, req.MemberEpoch = group, id, epoch
	if epoch == 0 {
		req.RebalanceTimeoutMillis = 60000
		req.SubscribedTopicNames = []string{"t2"}
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	} else if owned != nil {
		tt, _ := store.Topic("t2")
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{{TopicID: tt.ID, Partitions: owned}}
	}
	resp := c.ConsumerGroupHeartbeat(Client{ID: id, Host: "/127.0.0.1"}, req)
	if resp.ErrorCode != 0 {
		t.Fatalf("heartbeat %s epoch %d: %v", id, epoch, kerr.ErrorForCode(resp.ErrorCode))
	}
	return resp
}

func assigned848(resp *kmsg.ConsumerGroupHeartbeatResponse) []int32 {
	var out []int32
	if resp.Assignment != nil {
		for _, t := range resp.Assignment.Topics {
			out = append(out, t.Partitions...)
		}
	}
	return out
}

func commit848(t *testing.T, c *Coordinator, group, id string, epoch, partition int32) int16 {
	t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.SetVersion(9)
	req.Group, req.MemberID, req.Generation = group, id, epoch
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "t2"
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = partition, 1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp := c.OffsetCommit(testCtx(t), req)
	return resp.Topics[0].Partitions[0].ErrorCode
}

// TestConsumerGroupRevocationAndCommitEpochs walks a partition from one
// member to another, heartbeat by heartbeat: the old owner must revoke
// before the new one gets it, and commits at an older member epoch are
// taken only for partitions the member owned at that epoch (KIP-1251).
func TestConsumerGroupRevocationAndCommitEpochs(t *testing.T) {
	c := newCoord(t, nil)
	g := groupName(t)
	r := hb848(t, c, g, "m1", 0, nil)
	e1 := r.MemberEpoch
	if got := assigned848(r); len(got) != 3 {
		t.Fatalf("m1 alone got %v, want all 3 partitions of t2", got)
	}
	r2 := hb848(t, c, g, "m2", 0, nil)
	if got := assigned848(r2); len(got) != 0 {
		t.Fatalf("m2 got %v while m1 still owns everything", got)
	}
	// m1 learns it must give one up: same epoch, one partition fewer.
	r = hb848(t, c, g, "m1", e1, []int32{0, 1, 2})
	kept := assigned848(r)
	if r.MemberEpoch != e1 || len(kept) != 2 {
		t.Fatalf("m1 at epoch %d keeps %v; want epoch %d and 2 partitions", r.MemberEpoch, kept, e1)
	}
	revoked := int32(0 + 1 + 2)
	for _, p := range kept {
		revoked -= p
	}
	// Before revoking it, m1 commits it at its epoch: taken.
	if code := commit848(t, c, g, "m1", e1, revoked); code != 0 {
		t.Fatalf("commit of the partition being revoked: %v", kerr.ErrorForCode(code))
	}
	// m2 cannot have it yet.
	if got := assigned848(hb848(t, c, g, "m2", r2.MemberEpoch, []int32{})); len(got) != 0 {
		t.Fatalf("m2 got %v before m1 revoked", got)
	}
	// m1 reports it no longer owns it and moves to the new epoch.
	r = hb848(t, c, g, "m1", e1, kept)
	if r.MemberEpoch <= e1 {
		t.Fatalf("m1 stayed at epoch %d after revoking", r.MemberEpoch)
	}
	// A commit at m1's old epoch for a partition it still owns: taken
	// (it consumed it at that epoch); for the one it gave up: refused.
	if code := commit848(t, c, g, "m1", e1, kept[0]); code != 0 {
		t.Fatalf("commit at the previous epoch of a kept partition: %v", kerr.ErrorForCode(code))
	}
	if code := commit848(t, c, g, "m1", e1, revoked); code != kerr.StaleMemberEpoch.Code {
		t.Fatalf("commit of a revoked partition: %v, want STALE_MEMBER_EPOCH", kerr.ErrorForCode(code))
	}
	// Now m2 gets it, at the new epoch; a commit from m2 at an epoch
	// before it got it is refused.
	r2 = hb848(t, c, g, "m2", r2.MemberEpoch, []int32{})
	if got := assigned848(r2); len(got) != 1 || got[0] != revoked {
		t.Fatalf("m2 got %v, want [%d]", got, revoked)
	}
	if code := commit848(t, c, g, "m2", r2.MemberEpoch, revoked); code != 0 {
		t.Fatalf("m2 commit: %v", kerr.ErrorForCode(code))
	}
	if code := commit848(t, c, g, "m2", e1, revoked); code != kerr.StaleMemberEpoch.Code {
		t.Fatalf("m2 commit at an epoch before it owned the partition: %v, want STALE_MEMBER_EPOCH", kerr.ErrorForCode(code))
	}
	if code := commit848(t, c, g, "nobody", r2.MemberEpoch, revoked); code != kerr.UnknownMemberID.Code {
		t.Fatalf("commit of an unknown member: %v", kerr.ErrorForCode(code))
	}
}
