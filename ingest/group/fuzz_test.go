package group

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzCoordinator drives one group with arbitrary sequences of the
// membership requests a set of confused clients could send (stale ids and
// generations, duplicate joins, leaves of strangers, protocol changes,
// static and dynamic members, old and new versions), with session and
// rebalance timeouts short enough that timers fire in between. Joins and
// syncs are sent with an expired context, so they change the group and
// return at once. Nothing may panic or deadlock, and after every step the
// group must hold its invariants.
func FuzzCoordinator(f *testing.F) {
	f.Add([]byte{0, 0, 1, 2, 3, 4, 5, 6, 7})
	f.Add([]byte{0, 16, 32, 48, 1, 17, 33, 2, 18, 5, 21, 37, 3})
	f.Add([]byte{8, 24, 40, 9, 25, 10, 26, 4, 20, 36, 11, 27, 12})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 64 {
			ops = ops[:64]
		}
		c, err := New(Config{MinSessionTimeout: time.Millisecond}, store, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		const name = "fuzz-group"
		done, cancel := context.WithCancel(context.Background())
		cancel()
		ids := []string{"", "ghost"}
		gens := []int32{-1, 0, 1}
		instance := func(b byte) *string {
			if b&1 == 0 {
				return nil
			}
			return kmsg.StringPtr(fmt.Sprint("inst-", b%3))
		}
		learn := func(id string, gen int32) {
			if id != "" {
				ids = append(ids, id)
			}
			gens = append(gens, gen)
		}
		for i, op := range ops {
			id := ids[int(op>>3)%len(ids)]
			gen := gens[int(op>>5)%len(gens)]
			switch op & 7 {
			case 0, 1: // join
				req := kmsg.NewPtrJoinGroupRequest()
				req.Version = []int16{0, 3, 4, 5, 9}[int(op>>3)%5]
				req.Group = name
				req.MemberID = id
				req.InstanceID = instance(op >> 4)
				req.SessionTimeoutMillis = 5 + int32(op%7)
				req.RebalanceTimeoutMillis = 5 + int32(op%5)
				req.ProtocolType = "consumer"
				req.Protocols = protos([][]string{{"range"}, {"range", "roundrobin"}, {"roundrobin"}}[int(op>>2)%3]...)
				if r := c.Join(done, Client{ID: "fuzz"}, req); r != nil {
					learn(r.MemberID, r.Generation)
				}
			case 2: // sync, leader-style
				req := kmsg.NewPtrSyncGroupRequest()
				req.Version = 5
				req.Group = name
				req.MemberID = id
				req.Generation = gen
				req.InstanceID = instance(op >> 4)
				for _, other := range ids {
					req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: other, MemberAssignment: []byte(other)})
				}
				c.Sync(done, req)
			case 3:
				req := kmsg.NewPtrHeartbeatRequest()
				req.Version = 4
				req.Group, req.MemberID, req.Generation, req.InstanceID = name, id, gen, instance(op>>4)
				c.Heartbeat(req)
			case 4:
				req := kmsg.NewPtrLeaveGroupRequest()
				req.Version = 5
				req.Group = name
				req.Members = []kmsg.LeaveGroupRequestMember{{MemberID: id, InstanceID: instance(op >> 4)}}
				c.Leave(req)
			case 5:
				commitOne(t, c, name, id, gen, 9, "t1", int32(op>>3)%6, int64(i))
			case 6:
				d := describe(t, c, name)
				for _, m := range d.Members {
					learn(m.MemberID, gen)
				}
			case 7:
				time.Sleep(time.Duration(op>>3) * time.Millisecond / 4) // let timers fire
			}
			checkInvariants(t, c, name)
		}
	})
}

// checkInvariants looks inside the group: the bookkeeping must agree with
// itself whatever the clients did.
func checkInvariants(t *testing.T, c *Coordinator, name string) {
	t.Helper()
	g, _ := c.lookup(name, false)
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.dead {
		return
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("group %s in %s, generation %d, %d members: %s", name, g.state, g.generation, len(g.members), fmt.Sprintf(format, args...))
	}
	if len(g.members) > 0 {
		if _, ok := g.members[g.leader]; !ok {
			fail("leader %q is not a member", g.leader)
		}
	}
	if g.state == Empty && len(g.members) > 0 {
		fail("empty with members")
	}
	if (g.state == Stable || g.state == CompletingRebalance) && len(g.members) == 0 {
		fail("no members")
	}
	for inst, id := range g.static {
		m := g.members[id]
		if m == nil || m.instanceID == nil || *m.instanceID != inst {
			fail("static %s maps to %q, not a member with that instance", inst, id)
		}
	}
	for id, m := range g.members {
		if m.id != id {
			fail("member %q filed under %q", m.id, id)
		}
		if m.join != nil && g.state != PreparingRebalance {
			fail("member %s waits for a join answer", id)
		}
		if m.sync != nil && g.state != CompletingRebalance {
			fail("member %s waits for a sync answer", id)
		}
		if m.instanceID != nil && g.static[*m.instanceID] != id {
			fail("static member %s not in the instance map", id)
		}
	}
	for id := range g.pendingSync {
		if g.members[id] == nil {
			fail("pending sync of non-member %s", id)
		}
	}
	if g.state == Stable || g.state == CompletingRebalance {
		supported := false
		for _, m := range g.members {
			supported = hasProtocol(m.protocols, g.protocol)
			if !supported {
				fail("member %s does not support the selected %q", m.id, g.protocol)
			}
		}
	}
}
