package group

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strata-io/strata/metadata"
)

// A coordinator that loses a group to another node and gets it back must
// not answer OffsetFetch from what it cached before: the other node took
// commits meanwhile, and a stale answer rewinds the consumers (records
// processed again, committed offsets moving backwards).
func TestOffsetsAfterCoordinatorMovesAwayAndBack(t *testing.T) {
	var owner atomic.Int32   // node id coordinating every group
	var version atomic.Int64 // the live-node-set version
	owner.Store(1)
	cfg := func(id int32) func(*Config) {
		return func(c *Config) {
			c.NodeID = id
			c.Owner = func(string) (int32, string, int32, bool) { return owner.Load(), "127.0.0.1", 9090 + owner.Load(), true }
			c.OwnershipVersion = version.Load
		}
	}
	a, b := newCoord(t, cfg(1)), newCoord(t, cfg(2))
	g := groupName(t)

	if code := commitOne(t, a, g, "", -1, 9, "t1", 0, 10); code != 0 {
		t.Fatalf("commit on node 1: %d", code)
	}
	if off, code := fetchOne(t, a, g, "t1", 0); code != 0 || off != 10 {
		t.Fatalf("fetch on node 1: %d (code %d), want 10", off, code)
	}
	// Node 2 joins: the group moves there and takes a commit.
	owner.Store(2)
	version.Add(1)
	if code := commitOne(t, b, g, "", -1, 9, "t1", 0, 20); code != 0 {
		t.Fatalf("commit on node 2: %d", code)
	}
	// Node 2 leaves: the group is back on node 1.
	owner.Store(1)
	version.Add(1)
	if off, code := fetchOne(t, a, g, "t1", 0); code != 0 || off != 20 {
		t.Fatalf("fetch on node 1 after the group came back: %d (code %d), want 20 (committed on node 2)", off, code)
	}
}

// timeoutAfterApply is a Store whose CommitOffsets applies the commit and
// then reports a timeout, as an etcd write whose answer was lost does.
type timeoutAfterApply struct {
	*metadata.Store
	fail atomic.Bool
}

func (s *timeoutAfterApply) CommitOffsets(ctx context.Context, group string, offsets map[metadata.TP]metadata.CommittedOffset) error {
	if err := s.Store.CommitOffsets(ctx, group, offsets); err != nil {
		return err
	}
	if s.fail.Load() {
		return context.DeadlineExceeded
	}
	return nil
}

// A commit whose outcome is unknown (it timed out, yet etcd applied it) must
// not leave the coordinator answering the older offset it cached: etcd's
// answer, which other coordinators give, is the newer one, and the two
// together make committed offsets go backwards.
func TestOffsetsAfterACommitWithUnknownOutcome(t *testing.T) {
	st := &timeoutAfterApply{Store: store}
	c, err := New(Config{NodeID: 7, Host: "127.0.0.1", Port: 9092}, st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	g := groupName(t)
	if code := commitOne(t, c, g, "", -1, 9, "t1", 0, 10); code != 0 {
		t.Fatalf("commit: %d", code)
	}
	st.fail.Store(true)
	if code := commitOne(t, c, g, "", -1, 9, "t1", 0, 20); code != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("commit that timed out: code %d, want COORDINATOR_NOT_AVAILABLE", code)
	}
	st.fail.Store(false)
	if off, code := fetchOne(t, c, g, "t1", 0); code != 0 || off != 20 {
		t.Fatalf("fetch after a timed-out commit that applied: %d (code %d), want 20 (what etcd holds)", off, code)
	}
}

// A coordinator whose lease was replaced (it was paused or cut off past the
// TTL; another node ran the group meanwhile) takes no commit from a
// generation begun before: a consumer of the old session would move the
// committed offsets back. Once the member rejoins, it commits again.
func TestCommitsOfAGenerationFromBeforeALostLease(t *testing.T) {
	var epoch atomic.Int64
	c := newCoord(t, func(cfg *Config) { cfg.LeaseEpoch = epoch.Load })
	g := groupName(t)
	m := newTestMember(t, c, g, "zombie")
	m.join()
	m.sync(map[string][]byte{m.id: nil})
	if code := m.commit(10); code != 0 {
		t.Fatalf("commit before the lease was lost: %v", kerr.ErrorForCode(code))
	}
	epoch.Add(1) // the node's lease expired and it holds a new one
	if code := m.commit(5); code != kerr.IllegalGeneration.Code {
		t.Fatalf("commit of the old session after the lease was replaced: %v, want ILLEGAL_GENERATION", kerr.ErrorForCode(code))
	}
	if off, code := fetchOne(t, c, g, "t1", 0); code != 0 || off != 10 {
		t.Fatalf("committed offset after the refused commit: %d (code %d), want 10", off, code)
	}
	m.join()
	m.sync(map[string][]byte{m.id: nil})
	if code := m.commit(11); code != 0 {
		t.Fatalf("commit after rejoining: %v", kerr.ErrorForCode(code))
	}
}
