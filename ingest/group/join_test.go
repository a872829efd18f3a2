package group

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestSingleMemberLifecycle(t *testing.T) {
	c := newCoord(t, nil)
	g := groupName(t)
	m := newTestMember(t, c, g, "client-a")

	// KIP-394: a v4+ join without a member id is answered with one.
	first := c.Join(testCtx(t), Client{ID: "client-a"}, m.joinRequest())
	if first.ErrorCode != kerr.MemberIDRequired.Code || first.MemberID == "" {
		t.Fatalf("first join = %+v, want MEMBER_ID_REQUIRED with an id", first)
	}
	if d := describe(t, c, g); d.State != "Empty" || len(d.Members) != 0 {
		t.Fatalf("a pending member is not a member yet: %+v", d)
	}
	m.id = first.MemberID
	resp := m.join()
	if resp.MemberID != first.MemberID || resp.Generation != 1 || resp.LeaderID != m.id || *resp.Protocol != "range" {
		t.Fatalf("join = %+v", resp)
	}
	if ids := memberIDs(resp.Members); len(ids) != 1 || !ids[m.id] {
		t.Fatalf("leader's members = %v", ids)
	}
	if d := describe(t, c, g); d.State != "CompletingRebalance" {
		t.Fatalf("after join: state %s", d.State)
	}
	// A commit between join and sync would be for partitions not yet known.
	if code := m.commit(5); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("commit before sync = %v", kerr.ErrorForCode(code))
	}
	s := m.sync(map[string][]byte{m.id: []byte("all of t1")})
	if s.ErrorCode != 0 || string(s.MemberAssignment) != "all of t1" || *s.Protocol != "range" || *s.ProtocolType != "consumer" {
		t.Fatalf("sync = %+v", s)
	}
	if code := m.heartbeat(); code != 0 {
		t.Fatalf("heartbeat = %v", kerr.ErrorForCode(code))
	}
	if code := m.commit(5); code != 0 {
		t.Fatalf("commit = %v", kerr.ErrorForCode(code))
	}
	if off, code := fetchOne(t, c, g, "t1", 0); code != 0 || off != 5 {
		t.Fatalf("fetch = %d, %v", off, kerr.ErrorForCode(code))
	}
	d := describe(t, c, g)
	if d.State != "Stable" || d.Protocol != "range" || d.ProtocolType != "consumer" || len(d.Members) != 1 ||
		d.Members[0].ClientID != "client-a" || string(d.Members[0].MemberAssignment) != "all of t1" {
		t.Fatalf("describe = %+v", d)
	}

	if code := m.leave(); code != 0 {
		t.Fatalf("leave = %v", kerr.ErrorForCode(code))
	}
	if code := m.heartbeat(); code != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat after leave = %v", kerr.ErrorForCode(code))
	}
	// The group has offsets, so it stays, empty.
	if d := describe(t, c, g); d.State != "Empty" || len(d.Members) != 0 || d.ProtocolType != "consumer" {
		t.Fatalf("after leave: %+v", d)
	}
}

// TestRejoinAfterLeave is the classic gotcha: once the last member left, the
// group must take a new member (the same client, or any other), whether or
// not it has offsets, and the old member id must be refused.
func TestRejoinAfterLeave(t *testing.T) {
	for _, withOffsets := range []bool{false, true} {
		t.Run(fmt.Sprintf("offsets=%v", withOffsets), func(t *testing.T) {
			c := newCoord(t, nil)
			g := groupName(t)
			a := newTestMember(t, c, g, "a")
			a.join()
			a.sync(map[string][]byte{a.id: []byte("x")})
			if withOffsets {
				if code := a.commit(10); code != 0 {
					t.Fatal(kerr.ErrorForCode(code))
				}
			}
			oldID, oldGen := a.id, a.gen
			if code := a.leave(); code != 0 {
				t.Fatal(kerr.ErrorForCode(code))
			}
			// The stale id is refused; the client then joins afresh.
			stale := c.Join(testCtx(t), Client{ID: "a"}, a.joinRequest())
			if stale.ErrorCode != kerr.UnknownMemberID.Code {
				t.Fatalf("join with the old id = %v", kerr.ErrorForCode(stale.ErrorCode))
			}
			a.id = ""
			resp := a.join()
			if resp.MemberID == oldID || resp.LeaderID != resp.MemberID {
				t.Fatalf("rejoin = %+v", resp)
			}
			if withOffsets && resp.Generation <= oldGen {
				t.Fatalf("generation went from %d to %d", oldGen, resp.Generation)
			}
			if s := a.sync(map[string][]byte{a.id: []byte("y")}); s.ErrorCode != 0 || string(s.MemberAssignment) != "y" {
				t.Fatalf("sync after rejoin = %+v", s)
			}
			// Another client can join the re-formed group too.
			b := newTestMember(t, c, g, "b")
			bj := b.startJoin(testCtx(t))
			eventually(t, "a told to rejoin", func() bool { return a.heartbeat() == kerr.RebalanceInProgress.Code })
			aj := a.join()
			bresp := b.joined(bj)
			if aj.Generation != bresp.Generation || len(aj.Members) != 2 {
				t.Fatalf("two-member generation: a=%+v b=%+v", aj, bresp)
			}
		})
	}
}

func TestTwoMemberRebalance(t *testing.T) {
	c := newCoord(t, nil)
	g := groupName(t)
	a := newTestMember(t, c, g, "a")
	a.join()
	a.sync(map[string][]byte{a.id: []byte("a1")})
	gen1 := a.gen

	b := newTestMember(t, c, g, "b")
	b.protocols = protos("roundrobin", "range")
	bj := b.startJoin(testCtx(t))
	eventually(t, "rebalance to start", func() bool { return describe(t, c, g).State == "PreparingRebalance" })
	pendingFor(t, bj, 50*time.Millisecond) // b waits for a

	// a learns of the rebalance through its heartbeat, and its commits
	// at the old generation still count until the new one starts.
	if code := a.heartbeat(); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat = %v", kerr.ErrorForCode(code))
	}
	if code := a.commit(7); code != 0 {
		t.Fatalf("commit during PreparingRebalance = %v", kerr.ErrorForCode(code))
	}
	aj := a.join()
	bresp := b.joined(bj)
	if aj.Generation != gen1+1 || bresp.Generation != aj.Generation {
		t.Fatalf("generations a=%d b=%d, want %d", aj.Generation, bresp.Generation, gen1+1)
	}
	// Only range is common; the leader (still a) gets both members with
	// their range metadata, the follower none.
	if *aj.Protocol != "range" || *bresp.Protocol != "range" || aj.LeaderID != a.id || bresp.LeaderID != a.id {
		t.Fatalf("protocol/leader: a=%+v b=%+v", aj, bresp)
	}
	if ids := memberIDs(aj.Members); len(ids) != 2 || !ids[a.id] || !ids[b.id] || len(bresp.Members) != 0 {
		t.Fatalf("leader members %v, follower members %d", ids, len(bresp.Members))
	}
	for _, jm := range aj.Members {
		if string(jm.ProtocolMetadata) != string(consumerMeta("t1")) {
			t.Fatalf("member %s metadata %q", jm.MemberID, jm.ProtocolMetadata)
		}
	}

	// The follower's sync waits for the leader's.
	bs := b.startSync(nil)
	pendingFor(t, bs, 50*time.Millisecond)
	as := a.sync(map[string][]byte{a.id: []byte("p0-2"), b.id: []byte("p3-5")})
	if string(as.MemberAssignment) != "p0-2" {
		t.Fatalf("leader assignment %q", as.MemberAssignment)
	}
	if r := recv(t, bs); r.ErrorCode != 0 || string(r.MemberAssignment) != "p3-5" {
		t.Fatalf("follower sync = %+v", r)
	}

	// Stale generation and unknown members are refused.
	if code := commitOne(t, c, g, a.id, gen1, 9, "t1", 0, 8); code != kerr.IllegalGeneration.Code {
		t.Fatalf("stale commit = %v", kerr.ErrorForCode(code))
	}
	if code := commitOne(t, c, g, "nobody", a.gen, 9, "t1", 0, 8); code != kerr.UnknownMemberID.Code {
		t.Fatalf("unknown member commit = %v", kerr.ErrorForCode(code))
	}
	// A simple commit (no member, no generation) is only for empty groups.
	if code := commitOne(t, c, g, "", -1, 9, "t1", 0, 8); code != kerr.UnknownMemberID.Code {
		t.Fatalf("simple commit to a live group = %v", kerr.ErrorForCode(code))
	}
	stale := *a
	stale.gen = gen1
	if code := stale.heartbeat(); code != kerr.IllegalGeneration.Code {
		t.Fatalf("stale heartbeat = %v", kerr.ErrorForCode(code))
	}
	if r := stale.sync(nil); r.ErrorCode != kerr.IllegalGeneration.Code {
		t.Fatalf("stale sync = %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if code := b.commit(9); code != 0 {
		t.Fatalf("b commit = %v", kerr.ErrorForCode(code))
	}

	// A follower joining again with unchanged metadata changes nothing.
	if r := b.join(); r.Generation != aj.Generation || r.LeaderID != a.id {
		t.Fatalf("follower rejoin = %+v", r)
	}
	if code := a.heartbeat(); code != 0 {
		t.Fatalf("after follower rejoin, heartbeat = %v", kerr.ErrorForCode(code))
	}
	// The leader's join does start a rebalance.
	lj := a.startJoin(testCtx(t))
	eventually(t, "b told to rejoin", func() bool { return b.heartbeat() == kerr.RebalanceInProgress.Code })
	b.join()
	if r := a.joined(lj); r.Generation != aj.Generation+1 {
		t.Fatalf("leader rejoin generation %d", r.Generation)
	}
}

func TestProtocolChoice(t *testing.T) {
	tests := []struct {
		name    string
		a, b    []string
		bType   string
		want    string
		wantErr int16
	}{
		{"first common by votes", []string{"cooperative-sticky", "range"}, []string{"cooperative-sticky", "range"}, "consumer", "cooperative-sticky", 0},
		{"only common", []string{"range", "roundrobin"}, []string{"roundrobin", "sticky"}, "consumer", "roundrobin", 0},
		{"none common", []string{"range"}, []string{"sticky"}, "consumer", "", kerr.InconsistentGroupProtocol.Code},
		{"other type", []string{"range"}, []string{"range"}, "connect", "", kerr.InconsistentGroupProtocol.Code},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCoord(t, nil)
			g := groupName(t)
			a := newTestMember(t, c, g, "a")
			a.protocols = protos(tt.a...)
			a.join()
			b := newTestMember(t, c, g, "b")
			b.protocols = protos(tt.b...)
			req := b.joinRequest()
			req.ProtocolType = tt.bType
			if tt.wantErr != 0 {
				if r := c.Join(testCtx(t), Client{ID: "b"}, req); r.ErrorCode != tt.wantErr {
					t.Fatalf("join = %v, want %v", kerr.ErrorForCode(r.ErrorCode), kerr.ErrorForCode(tt.wantErr))
				}
				return
			}
			bj := b.startJoin(testCtx(t))
			eventually(t, "rebalance", func() bool { return describe(t, c, g).State == "PreparingRebalance" })
			aj := a.join()
			b.joined(bj)
			if *aj.Protocol != tt.want {
				t.Fatalf("protocol %q, want %q", *aj.Protocol, tt.want)
			}
		})
	}
}

func TestJoinValidation(t *testing.T) {
	c := newCoord(t, func(cfg *Config) { cfg.MinSessionTimeout = time.Second; cfg.MaxSessionTimeout = time.Minute })
	tests := []struct {
		name string
		mod  func(*kmsg.JoinGroupRequest)
		want int16
	}{
		{"empty group", func(r *kmsg.JoinGroupRequest) { r.Group = "" }, kerr.InvalidGroupID.Code},
		{"session too short", func(r *kmsg.JoinGroupRequest) { r.SessionTimeoutMillis = 999 }, kerr.InvalidSessionTimeout.Code},
		{"session too long", func(r *kmsg.JoinGroupRequest) { r.SessionTimeoutMillis = 60001 }, kerr.InvalidSessionTimeout.Code},
		{"no protocols", func(r *kmsg.JoinGroupRequest) { r.Protocols = nil }, kerr.InconsistentGroupProtocol.Code},
		{"no protocol type", func(r *kmsg.JoinGroupRequest) { r.ProtocolType = "" }, kerr.InconsistentGroupProtocol.Code},
		{"unknown member of unknown group", func(r *kmsg.JoinGroupRequest) { r.MemberID = "ghost" }, kerr.UnknownMemberID.Code},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestMember(t, c, groupName(t), "x")
			req := m.joinRequest()
			tt.mod(req)
			if r := c.Join(testCtx(t), Client{ID: "x"}, req); r.ErrorCode != tt.want {
				t.Fatalf("join = %v, want %v", kerr.ErrorForCode(r.ErrorCode), kerr.ErrorForCode(tt.want))
			}
		})
	}
}

// TestJoinV0 checks the old protocol: no member id round trip, and the
// session timeout doubles as the rebalance timeout (v0 has none).
func TestJoinV0(t *testing.T) {
	t.Parallel() // waits on timeouts
	c := newCoord(t, nil)
	g := groupName(t)
	old := newTestMember(t, c, g, "old")
	old.version = 0
	old.session = time.Second
	old.rebalance = time.Hour // not sent at v0
	r := c.Join(testCtx(t), Client{ID: "old"}, old.joinRequest())
	if r.ErrorCode != 0 || r.MemberID == "" || r.Generation != 1 {
		t.Fatalf("v0 join = %+v", r)
	}
	old.id, old.gen = r.MemberID, r.Generation
	old.sync(map[string][]byte{old.id: []byte("a")})

	// A new member starts a rebalance the v0 member never rejoins (but it
	// keeps heartbeating). The join phase must end after the v0 member's
	// rebalance timeout, its session timeout.
	ctx, stop := context.WithCancel(testCtx(t))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			old.heartbeat()
			time.Sleep(50 * time.Millisecond)
		}
	}()
	defer func() { stop(); wg.Wait() }()
	start := time.Now()
	n := newTestMember(t, c, g, "new")
	n.rebalance = 50 * time.Millisecond
	resp := n.join()
	if took := time.Since(start); took < 900*time.Millisecond {
		t.Fatalf("join phase ended after %v, before the v0 member's rebalance timeout", took)
	}
	if len(resp.Members) != 1 || resp.LeaderID != n.id || resp.Generation != 2 {
		t.Fatalf("new generation = %+v, want n alone", resp)
	}
	stop()
	wg.Wait()
	if code := old.heartbeat(); code != kerr.UnknownMemberID.Code {
		t.Fatalf("the member that did not rejoin: heartbeat = %v", kerr.ErrorForCode(code))
	}
}

// TestRebalanceTimeout: members that do not rejoin within the rebalance
// timeout are removed and the others go on without them.
func TestRebalanceTimeout(t *testing.T) {
	t.Parallel() // waits on timeouts
	c := newCoord(t, nil)
	g := groupName(t)
	a := newTestMember(t, c, g, "a")
	b := newTestMember(t, c, g, "b")
	// a's long rebalance timeout bounds the first rebalance (so a slow
	// machine cannot make a miss it); b's short one is what counts later.
	a.rebalance, b.rebalance = 2*time.Second, 200*time.Millisecond
	a.join()
	bj := b.startJoin(testCtx(t))
	eventually(t, "rebalance", func() bool { return describe(t, c, g).State == "PreparingRebalance" })
	a.join()
	b.joined(bj)
	a.sync(map[string][]byte{a.id: []byte("a"), b.id: []byte("b")})
	b.sync(nil)

	// c joins; a rejoins; b sleeps through the rebalance, which ends
	// after the longest rebalance timeout (a's).
	m := newTestMember(t, c, g, "c")
	m.rebalance = 200 * time.Millisecond
	cj := m.startJoin(testCtx(t))
	eventually(t, "rebalance", func() bool { return a.heartbeat() == kerr.RebalanceInProgress.Code })
	aj := a.join()
	m.joined(cj)
	if ids := memberIDs(aj.Members); len(ids) != 2 || ids[b.id] {
		t.Fatalf("members after timeout: %v (b=%s)", ids, b.id)
	}
	if code := b.heartbeat(); code != kerr.UnknownMemberID.Code {
		t.Fatalf("removed member's heartbeat = %v", kerr.ErrorForCode(code))
	}
}

// TestSessionTimeout: a member that stops heartbeating is evicted and the
// group rebalances without it.
func TestSessionTimeout(t *testing.T) {
	t.Parallel() // waits on timeouts
	c := newCoord(t, nil)
	g := groupName(t)
	a := newTestMember(t, c, g, "a")
	b := newTestMember(t, c, g, "b")
	a.session, b.session = time.Second, 10*time.Second
	a.join()
	bj := b.startJoin(testCtx(t))
	eventually(t, "rebalance", func() bool { return describe(t, c, g).State == "PreparingRebalance" })
	a.join()
	b.joined(bj)
	a.sync(map[string][]byte{a.id: []byte("a"), b.id: []byte("b")})
	b.sync(nil)

	// Only b heartbeats.
	eventually(t, "a evicted", func() bool { return b.heartbeat() == kerr.RebalanceInProgress.Code })
	if d := describe(t, c, g); len(d.Members) != 1 || d.Members[0].MemberID != b.id {
		t.Fatalf("members after eviction: %+v", d.Members)
	}
	r := b.join()
	if r.LeaderID != b.id || len(r.Members) != 1 {
		t.Fatalf("b's generation: %+v", r)
	}
	if code := a.heartbeat(); code != kerr.UnknownMemberID.Code {
		t.Fatalf("evicted member's heartbeat = %v", kerr.ErrorForCode(code))
	}
}

// TestSyncTimeout: a member that got its join answer but never syncs is
// removed after the rebalance timeout.
func TestSyncTimeout(t *testing.T) {
	t.Parallel() // waits on timeouts
	c := newCoord(t, nil)
	g := groupName(t)
	a := newTestMember(t, c, g, "a")
	b := newTestMember(t, c, g, "b")
	a.rebalance, b.rebalance = 2*time.Second, 300*time.Millisecond
	a.join()
	bj := b.startJoin(testCtx(t))
	eventually(t, "rebalance", func() bool { return describe(t, c, g).State == "PreparingRebalance" })
	a.join()
	b.joined(bj)
	a.sync(map[string][]byte{a.id: []byte("a"), b.id: []byte("b")}) // b never syncs
	eventually(t, "b removed", func() bool { return a.heartbeat() == kerr.RebalanceInProgress.Code })
	if r := a.join(); len(r.Members) != 1 {
		t.Fatalf("after sync timeout: %+v", r)
	}
}

// TestPendingMemberHoldsJoin: a member id handed out with
// MEMBER_ID_REQUIRED holds the join phase until that member joins or its
// session timeout passes.
func TestPendingMemberHoldsJoin(t *testing.T) {
	t.Parallel() // waits on timeouts
	c := newCoord(t, nil)
	g := groupName(t)
	a := newTestMember(t, c, g, "a")
	a.join()
	a.sync(map[string][]byte{a.id: []byte("a")})

	p := newTestMember(t, c, g, "p")
	p.session = time.Second
	r := c.Join(testCtx(t), Client{ID: "p"}, p.joinRequest())
	if r.ErrorCode != kerr.MemberIDRequired.Code {
		t.Fatalf("join = %v", kerr.ErrorForCode(r.ErrorCode))
	}
	// A pending member does not disturb a stable group...
	if code := a.heartbeat(); code != 0 {
		t.Fatalf("heartbeat = %v", kerr.ErrorForCode(code))
	}
	// ...but a rebalance waits for it until its session ends.
	start := time.Now()
	aj := a.startJoin(testCtx(t))
	pendingFor(t, aj, 100*time.Millisecond)
	resp := a.joined(aj)
	if took := time.Since(start); took < 900*time.Millisecond {
		t.Fatalf("join phase ended after %v, before the pending member expired", took)
	}
	if len(resp.Members) != 1 {
		t.Fatalf("members %+v", resp.Members)
	}
	// The expired id is no longer accepted.
	req := p.joinRequest()
	req.MemberID = r.MemberID
	if r2 := c.Join(testCtx(t), Client{ID: "p"}, req); r2.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("expired pending id: %v", kerr.ErrorForCode(r2.ErrorCode))
	}
}

// TestStaticMembership covers KIP-345: a restarted static member takes its
// old place without a rebalance when its metadata is unchanged; its old
// member id is fenced; a change of metadata does rebalance.
func TestStaticMembership(t *testing.T) {
	c := newCoord(t, nil)
	g := groupName(t)
	s := newTestMember(t, c, g, "s")
	s.instance = kmsg.StringPtr("instance-1")
	a := newTestMember(t, c, g, "a")
	a.protocols = protos("range", "roundrobin")
	// A static member joins without MEMBER_ID_REQUIRED.
	r := c.Join(testCtx(t), Client{ID: "s"}, s.joinRequest())
	if r.ErrorCode != 0 || r.LeaderID != r.MemberID {
		t.Fatalf("static join = %+v", r)
	}
	s.id, s.gen = r.MemberID, r.Generation
	aj := a.startJoin(testCtx(t))
	eventually(t, "rebalance", func() bool { return s.heartbeat() == kerr.RebalanceInProgress.Code })
	sj := s.join()
	a.joined(aj)
	for _, jm := range sj.Members {
		if jm.MemberID == s.id && (jm.InstanceID == nil || *jm.InstanceID != "instance-1") {
			t.Fatalf("leader sees static member without its instance id: %+v", jm)
		}
	}
	s.sync(map[string][]byte{s.id: []byte("s-part"), a.id: []byte("a-part")})
	a.sync(nil)
	gen := s.gen

	// The static leader restarts (v5: no KIP-814), same metadata.
	restarted := *s
	restarted.id = ""
	restarted.version = 5
	rr := c.Join(testCtx(t), Client{ID: "s"}, restarted.joinRequest())
	if rr.ErrorCode != 0 || rr.MemberID == s.id || rr.Generation != gen {
		t.Fatalf("static rejoin = %+v", rr)
	}
	// It is told the old leader id, so it syncs as a follower and gets
	// its kept assignment.
	if rr.LeaderID != s.id || len(rr.Members) != 0 {
		t.Fatalf("static rejoin leader=%q members=%d", rr.LeaderID, len(rr.Members))
	}
	restarted.id, restarted.gen = rr.MemberID, rr.Generation
	if code := a.heartbeat(); code != 0 {
		t.Fatalf("static rejoin rebalanced: heartbeat = %v", kerr.ErrorForCode(code))
	}
	if r := restarted.sync(nil); r.ErrorCode != 0 || string(r.MemberAssignment) != "s-part" {
		t.Fatalf("restarted sync = %+v", r)
	}
	// The old incarnation is fenced.
	if code := s.heartbeat(); code != kerr.FencedInstanceID.Code {
		t.Fatalf("old instance heartbeat = %v", kerr.ErrorForCode(code))
	}
	if code := commitOne(t, c, g, s.id, gen, 9, "t1", 0, 1); code != kerr.UnknownMemberID.Code {
		t.Fatalf("old instance commit = %v", kerr.ErrorForCode(code))
	}
	if d := describe(t, c, g); len(d.Members) != 2 || d.State != "Stable" {
		t.Fatalf("describe = %+v", d)
	}

	// A v9 restart of the leader: told it leads, with SkipAssignment.
	again := restarted
	again.id, again.version = "", 9
	r9 := again.join()
	if !r9.SkipAssignment || r9.LeaderID != r9.MemberID || len(r9.Members) != 2 || r9.Generation != gen {
		t.Fatalf("v9 static leader rejoin = %+v", r9)
	}
	if r := again.sync(nil); string(r.MemberAssignment) != "s-part" {
		t.Fatalf("sync after skip-assignment rejoin = %+v", r)
	}

	// New metadata under the same protocol (a client's generation or
	// owned partitions change on every restart) is taken without a
	// rebalance, as in Kafka; the leader sees it at the next one.
	meta2 := again
	meta2.id = ""
	meta2.protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: consumerMeta("t1", "t2")}, {Name: "roundrobin"}}
	if r := meta2.join(); r.Generation != gen {
		t.Fatalf("static rejoin with new metadata = %+v", r)
	}
	if code := a.heartbeat(); code != 0 {
		t.Fatalf("new metadata rebalanced: %v", kerr.ErrorForCode(code))
	}
	for _, dm := range describe(t, c, g).Members {
		if dm.MemberID == meta2.id && string(dm.ProtocolMetadata) != string(consumerMeta("t1", "t2")) {
			t.Fatalf("new metadata not kept: %q", dm.ProtocolMetadata)
		}
	}

	// Protocols that change the group's selected protocol rebalance: both
	// support range and roundrobin, the static member now only
	// roundrobin.
	changed := meta2
	changed.id = ""
	changed.protocols = protos("roundrobin")
	cj := changed.startJoin(testCtx(t))
	eventually(t, "rebalance on a new protocol", func() bool { return a.heartbeat() == kerr.RebalanceInProgress.Code })
	a.join()
	if r := changed.joined(cj); r.Generation <= gen || *r.Protocol != "roundrobin" {
		t.Fatalf("static rejoin with a new protocol = %+v", r)
	}

	// The admin client removes a static member by instance id alone.
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version = 4
	req.Group = g
	req.Members = []kmsg.LeaveGroupRequestMember{{InstanceID: kmsg.StringPtr("instance-1")}, {InstanceID: kmsg.StringPtr("nope")}}
	lr := c.Leave(req)
	if lr.ErrorCode != 0 || lr.Members[0].ErrorCode != 0 || lr.Members[1].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leave by instance = %+v", lr)
	}
	if d := describe(t, c, g); len(d.Members) != 1 {
		t.Fatalf("after removing the static member: %+v", d.Members)
	}
}

// TestStaticMemberSurvivesRebalanceTimeout: a static member that misses a
// rebalance stays (until its session ends), as in Kafka.
func TestStaticMemberSurvivesRebalanceTimeout(t *testing.T) {
	c := newCoord(t, nil)
	g := groupName(t)
	s := newTestMember(t, c, g, "s")
	s.instance = kmsg.StringPtr("i")
	s.rebalance = 200 * time.Millisecond
	s.join()
	s.sync(map[string][]byte{s.id: []byte("s")})
	a := newTestMember(t, c, g, "a")
	a.rebalance = 200 * time.Millisecond
	resp := a.join() // s never rejoins: after 200ms a goes on, s kept
	if ids := memberIDs(resp.Members); resp.LeaderID != a.id || len(ids) != 2 || !ids[s.id] {
		t.Fatalf("join = %+v", resp)
	}
}

func TestLeaveVersions(t *testing.T) {
	c := newCoord(t, nil)
	g := groupName(t)
	a := newTestMember(t, c, g, "a")
	a.join()
	for _, v := range []int16{0, 2} {
		req := kmsg.NewPtrLeaveGroupRequest()
		req.Version = v
		req.Group = g
		req.MemberID = "nobody"
		if r := c.Leave(req); r.ErrorCode != kerr.UnknownMemberID.Code {
			t.Fatalf("v%d leave of unknown = %v", v, kerr.ErrorForCode(r.ErrorCode))
		}
	}
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version = 1
	req.Group = g
	req.MemberID = a.id
	if r := c.Leave(req); r.ErrorCode != 0 {
		t.Fatalf("v1 leave = %v", kerr.ErrorForCode(r.ErrorCode))
	}
	req.Group = "no-such-group-" + g
	if r := c.Leave(req); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leave of unknown group = %v", kerr.ErrorForCode(r.ErrorCode))
	}
}

// TestInitialRebalanceDelay: members arriving within the delay of an empty
// group's first rebalance share its first generation.
func TestInitialRebalanceDelay(t *testing.T) {
	t.Parallel() // waits on timeouts
	c := newCoord(t, func(cfg *Config) { cfg.InitialRebalanceDelay = time.Second })
	g := groupName(t)
	ctx := testCtx(t)
	ms := make([]*tmember, 3)
	chs := make([]<-chan *kmsg.JoinGroupResponse, 3)
	for i := range ms {
		ms[i] = newTestMember(t, c, g, fmt.Sprintf("m%d", i))
		chs[i] = ms[i].startJoin(ctx)
	}
	for i, m := range ms {
		if r := m.joined(chs[i]); r.Generation != 1 {
			t.Fatalf("%s in generation %d, want all in 1", m.clientID, r.Generation)
		}
	}
}

// TestManyMembers joins members concurrently and checks they end in one
// generation with one leader that sees them all.
func TestManyMembers(t *testing.T) {
	c := newCoord(t, nil)
	g := groupName(t)
	ctx := testCtx(t)
	const n = 12
	ms := make([]*tmember, n)
	for i := range ms {
		ms[i] = newTestMember(t, c, g, fmt.Sprintf("m%d", i))
		ms[i].rebalance = 2 * time.Second
	}
	// Every member joins, syncs (the leader with an assignment naming
	// each member) and heartbeats, joining again whenever told to, as a
	// consumer does, until the group is stable with all of them.
	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				r := recv(t, m.startJoin(ctx))
				if r == nil || r.ErrorCode != 0 {
					return
				}
				m.id, m.gen = r.MemberID, r.Generation
				assign := make(map[string][]byte)
				if m.id == r.LeaderID {
					for _, jm := range r.Members {
						assign[jm.MemberID] = []byte(jm.MemberID)
					}
				}
				m.sync(assign)
				for code := int16(0); code == 0; code = m.heartbeat() {
					select {
					case <-done:
						return
					case <-time.After(20 * time.Millisecond):
					}
				}
			}
		}()
	}
	eventually(t, "all members stable", func() bool {
		d := describe(t, c, g)
		if d.State != "Stable" || len(d.Members) != n {
			return false
		}
		for _, m := range d.Members {
			if string(m.MemberAssignment) != m.MemberID {
				return false
			}
		}
		return true
	})
	close(done)
	wg.Wait()
}

// TestJoinCancelled: a join whose client went away returns nil and the
// member is dealt with by the timeouts.
func TestJoinCancelled(t *testing.T) {
	c := newCoord(t, nil)
	g := groupName(t)
	a := newTestMember(t, c, g, "a")
	a.join()
	a.sync(map[string][]byte{a.id: nil})
	b := newTestMember(t, c, g, "b")
	ctx, cancel := context.WithCancel(testCtx(t))
	bj := b.startJoin(ctx)
	eventually(t, "rebalance", func() bool { return a.heartbeat() == kerr.RebalanceInProgress.Code })
	cancel()
	if r := recv(t, bj); r != nil {
		t.Fatalf("cancelled join answered %+v", r)
	}
}

// TestCloseAnswersWaiters: Close answers blocked joins and syncs with
// NOT_COORDINATOR, and every later call too; goleak in TestMain checks no
// timer survives.
func TestCloseAnswersWaiters(t *testing.T) {
	c := newCoord(t, nil)
	g := groupName(t)
	a := newTestMember(t, c, g, "a")
	a.join()
	a.sync(map[string][]byte{a.id: nil})
	b := newTestMember(t, c, g, "b")
	bj := b.startJoin(testCtx(t))
	eventually(t, "rebalance", func() bool { return describe(t, c, g).State == "PreparingRebalance" })
	c.Close()
	if r := recv(t, bj); r == nil || r.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("waiting join after Close = %+v", r)
	}
	if code := a.heartbeat(); code != kerr.NotCoordinator.Code {
		t.Fatalf("heartbeat after Close = %v", kerr.ErrorForCode(code))
	}
	if code := a.commit(1); code != kerr.NotCoordinator.Code {
		t.Fatalf("commit after Close = %v", kerr.ErrorForCode(code))
	}
	c.Close() // idempotent
}
