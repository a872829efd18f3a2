package group

import (
	"sync/atomic"
	"testing"
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
