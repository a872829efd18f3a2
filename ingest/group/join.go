package group

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxLookups bounds the retries of a call that keeps finding its group
// removed under it (deleted or forgotten between lookup and lock). One retry
// is almost always enough; the bound only stops a pathological loop.
const maxLookups = 8

// lockLive locks g and reports whether it is usable: code is
// NOT_COORDINATOR after Close, and retry is set when the group died before
// the lock was taken. On a non-zero code or retry the lock is released.
func (g *group) lockLive() (code int16, retry bool) {
	g.mu.Lock()
	switch {
	case g.stopped:
		g.mu.Unlock()
		return kerr.NotCoordinator.Code, false
	case g.dead:
		g.mu.Unlock()
		return 0, true
	}
	return 0, false
}

// Join handles a JoinGroup request (any version; req.Version says which).
// It blocks until the member's place in the next generation is decided:
// the join phase ends, the member is removed, or ctx ends (nil is then
// returned: the client is gone and nobody reads an answer).
//
// Version differences: v0 has no rebalance timeout (the session timeout is
// used); from v4 a member joining without a member id gets one with
// MEMBER_ID_REQUIRED and must join again with it (KIP-394); from v5 a
// group.instance.id makes the member static (KIP-345); from v9 a static
// leader that rejoins without a rebalance gets the members with
// SkipAssignment set (KIP-814).
func (c *Coordinator) Join(ctx context.Context, cl Client, req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.MemberID = req.MemberID
	fail := func(code int16) *kmsg.JoinGroupResponse {
		resp.ErrorCode = code
		return resp
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID.Code)
	}
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	rebalance := time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	if req.Version == 0 || req.RebalanceTimeoutMillis <= 0 {
		rebalance = session
	}
	if session < c.cfg.MinSessionTimeout || session > c.cfg.MaxSessionTimeout {
		return fail(kerr.InvalidSessionTimeout.Code)
	}
	if req.Version < 5 {
		req.InstanceID = nil
	}
	for range maxLookups {
		g, err := c.lookup(req.Group, req.MemberID == "")
		if err != nil {
			return fail(kerr.NotCoordinator.Code)
		}
		if g == nil {
			// A member id for a group we do not know: it belonged to a
			// group since removed, or to this node before a restart.
			return fail(kerr.UnknownMemberID.Code)
		}
		code, retry := g.lockLive()
		if retry {
			continue
		}
		if code != 0 {
			return fail(code)
		}
		if out, done := g.joinOtherKindLocked(cl, req, session, rebalance); done {
			g.mu.Unlock()
			return out
		}
		ch, out := g.joinLocked(cl, req, session, rebalance)
		g.mu.Unlock()
		if ch == nil {
			return out
		}
		select {
		case r := <-ch:
			return r
		case <-ctx.Done():
			return nil
		}
	}
	return fail(kerr.CoordinatorNotAvailable.Code)
}

// joinLocked is Join on a locked, live group. It returns either an answer
// now or the channel the answer will come on.
func (g *group) joinLocked(cl Client, req *kmsg.JoinGroupRequest, session, rebalance time.Duration) (chan *kmsg.JoinGroupResponse, *kmsg.JoinGroupResponse) {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.MemberID = req.MemberID
	fail := func(code int16) (chan *kmsg.JoinGroupResponse, *kmsg.JoinGroupResponse) {
		resp.ErrorCode = code
		return nil, resp
	}
	if !g.supportsProtocolsLocked(req.ProtocolType, req.Protocols) {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	newMember := func(id string) (chan *kmsg.JoinGroupResponse, *kmsg.JoinGroupResponse) {
		ch := make(chan *kmsg.JoinGroupResponse, 1)
		m := &member{
			id:               id,
			instanceID:       cloneString(req.InstanceID),
			clientID:         cl.ID,
			clientHost:       cl.Host,
			sessionTimeout:   session,
			rebalanceTimeout: rebalance,
			protocolType:     req.ProtocolType,
			protocols:        req.Protocols,
			join:             ch,
			joinVersion:      req.Version,
		}
		g.addMemberLocked(m)
		return ch, nil
	}

	if req.MemberID == "" {
		id := newMemberID(cl.ID, req.InstanceID)
		if req.InstanceID != nil {
			if m := g.members[g.static[*req.InstanceID]]; m != nil {
				return g.replaceStaticLocked(m, id, cl, req, session, rebalance)
			}
			return newMember(id)
		}
		if req.Version >= 4 {
			g.addPendingLocked(id, session)
			resp.MemberID = id
			return fail(kerr.MemberIDRequired.Code)
		}
		return newMember(id)
	}

	if _, ok := g.pending[req.MemberID]; ok && req.InstanceID == nil {
		return newMember(req.MemberID)
	}
	if code := g.validateMemberLocked(req.MemberID, req.InstanceID, true); code != 0 {
		return fail(code)
	}
	m := g.members[req.MemberID]
	rejoin := func() (chan *kmsg.JoinGroupResponse, *kmsg.JoinGroupResponse) {
		ch := make(chan *kmsg.JoinGroupResponse, 1)
		g.updateMemberLocked(m, req, session, rebalance, ch)
		return ch, nil
	}
	switch g.state {
	case PreparingRebalance:
		return rejoin()
	case CompletingRebalance:
		if m.matches(req.Protocols) {
			// The member lost our answer (a timeout or a reconnect):
			// the same answer again, leader included.
			g.touchLocked(m)
			return nil, g.joinResultLocked(m, resp)
		}
		return rejoin()
	case Stable:
		if m.id == g.leader || !m.matches(req.Protocols) {
			// A leader's join is how it asks for a rebalance (for
			// example when topics it assigns changed).
			return rejoin()
		}
		g.touchLocked(m)
		return nil, g.joinResultLocked(m, resp)
	}
	return fail(kerr.UnknownMemberID.Code)
}

// replaceStaticLocked handles a static member joining without a member id
// while its instance id maps to old: the new member id takes old's place
// and assignment, old's waiting requests are fenced. In a stable group this
// costs no rebalance (the point of static membership: a restart keeps the
// partitions) unless the member's new protocols change the protocol the
// group would select. As in Kafka, the metadata bytes are not compared:
// clients put their generation (KIP-792) or owned partitions (cooperative
// protocols) in them, so they differ on every restart. The new metadata is
// kept and reaches the leader at the next rebalance.
func (g *group) replaceStaticLocked(old *member, newID string, cl Client, req *kmsg.JoinGroupRequest, session, rebalance time.Duration) (chan *kmsg.JoinGroupResponse, *kmsg.JoinGroupResponse) {
	oldID := old.id
	previousLeader := g.leader

	g.joinErrorLocked(old, kerr.FencedInstanceID.Code)
	g.syncErrorLocked(old, kerr.FencedInstanceID.Code)
	delete(g.members, oldID)
	old.id = newID
	g.members[newID] = old
	if _, ok := g.pendingSync[oldID]; ok {
		delete(g.pendingSync, oldID)
		g.pendingSync[newID] = struct{}{}
	}
	if g.leader == oldID {
		g.leader = newID
	}
	g.static[*req.InstanceID] = newID
	old.clientID, old.clientHost = cl.ID, cl.Host
	old.sessionTimeout, old.rebalanceTimeout = session, rebalance
	old.protocolType, old.protocols = req.ProtocolType, req.Protocols
	g.touchLocked(old)
	unchanged := g.selectProtocolLocked() == g.protocol
	g.c.log.Info("group: static member replaced", "group", g.name, "instance", *req.InstanceID,
		"old", oldID, "new", newID, "state", g.state.String())

	if g.state == Stable && unchanged {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.MemberID = newID
		resp.Generation = g.generation
		resp.ProtocolType = kmsg.StringPtr(g.protocolType)
		resp.Protocol = kmsg.StringPtr(g.protocol)
		if req.Version >= 9 && g.leader == newID {
			// KIP-814: the leader learns it leads but keeps the
			// assignment it computed before.
			resp.LeaderID = newID
			resp.Members = g.memberMetadataLocked()
			resp.SkipAssignment = true
		} else {
			// Older leaders are told the previous leader id, so they
			// act as followers and fetch their kept assignment with
			// SyncGroup instead of assigning with no members.
			resp.LeaderID = previousLeader
		}
		return nil, resp
	}
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	old.join, old.joinVersion = ch, req.Version
	g.maybePrepareRebalanceLocked()
	return ch, nil
}

// validateMemberLocked checks that memberID is a member and, for a static
// member, that instanceID maps to it. strict (JoinGroup, LeaveGroup) also
// refuses an instance id the group does not know; otherwise (SyncGroup,
// Heartbeat, OffsetCommit) only a mapping to another member id is refused,
// as Kafka does.
func (g *group) validateMemberLocked(memberID string, instanceID *string, strict bool) int16 {
	if instanceID != nil {
		cur, ok := g.static[*instanceID]
		switch {
		case ok && cur != memberID:
			return kerr.FencedInstanceID.Code
		case !ok && strict:
			return kerr.UnknownMemberID.Code
		}
	}
	if _, ok := g.members[memberID]; !ok {
		return kerr.UnknownMemberID.Code
	}
	return 0
}

// Sync handles a SyncGroup request. The leader's request carries every
// member's assignment; followers block until the leader's arrives (or a
// rebalance or ctx ends the wait; nil is returned when ctx ended).
func (c *Coordinator) Sync(ctx context.Context, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	fail := func(code int16) *kmsg.SyncGroupResponse {
		resp.ErrorCode = code
		return resp
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID.Code)
	}
	g, code := c.existing(req.Group)
	if code != 0 {
		return fail(code)
	}
	ch, out := g.syncLocked(req)
	g.mu.Unlock()
	if ch == nil {
		return out
	}
	select {
	case r := <-ch:
		return r
	case <-ctx.Done():
		return nil
	}
}

// existing returns the live group named name, locked, or the code to
// answer a member of a group we do not have (UNKNOWN_MEMBER_ID) or after
// Close (NOT_COORDINATOR).
func (c *Coordinator) existing(name string) (*group, int16) {
	for range maxLookups {
		g, err := c.lookup(name, false)
		if err != nil {
			return nil, kerr.NotCoordinator.Code
		}
		if g == nil {
			return nil, kerr.UnknownMemberID.Code
		}
		code, retry := g.lockLive()
		if retry {
			continue
		}
		if code != 0 {
			return nil, code
		}
		return g, 0
	}
	return nil, kerr.UnknownMemberID.Code
}

func (g *group) syncLocked(req *kmsg.SyncGroupRequest) (chan *kmsg.SyncGroupResponse, *kmsg.SyncGroupResponse) {
	if g.isConsumerGroupLocked() {
		return nil, g.classicSyncLocked(req)
	}
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	fail := func(code int16) (chan *kmsg.SyncGroupResponse, *kmsg.SyncGroupResponse) {
		resp.ErrorCode = code
		return nil, resp
	}
	if req.Version < 3 {
		req.InstanceID = nil
	}
	if code := g.validateMemberLocked(req.MemberID, req.InstanceID, false); code != 0 {
		return fail(code)
	}
	if req.Generation != g.generation {
		return fail(kerr.IllegalGeneration.Code)
	}
	if (req.ProtocolType != nil && *req.ProtocolType != g.protocolType) || (req.Protocol != nil && *req.Protocol != g.protocol) {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	m := g.members[req.MemberID]
	switch g.state {
	case PreparingRebalance:
		return fail(kerr.RebalanceInProgress.Code)
	case CompletingRebalance:
		ch := make(chan *kmsg.SyncGroupResponse, 1)
		g.syncErrorLocked(m, kerr.RebalanceInProgress.Code) // a duplicate sync: the older one yields
		m.sync, m.syncVersion = ch, req.Version
		delete(g.pendingSync, m.id)
		if m.id == g.leader {
			g.completeSyncLocked(req.GroupAssignment)
		}
		return ch, nil
	case Stable:
		delete(g.pendingSync, m.id)
		if len(g.pendingSync) == 0 {
			g.clearPendingSyncLocked()
		}
		g.touchLocked(m)
		return nil, g.syncResultLocked(m, resp)
	}
	return fail(kerr.UnknownMemberID.Code)
}

// Heartbeat handles a Heartbeat request: it keeps the member's session
// alive and tells it (REBALANCE_IN_PROGRESS) when it must join again.
func (c *Coordinator) Heartbeat(req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	if req.Version < 3 {
		req.InstanceID = nil
	}
	g, code := c.existing(req.Group)
	if code != 0 {
		resp.ErrorCode = code
		return resp
	}
	defer g.mu.Unlock()
	if g.isConsumerGroupLocked() {
		return g.classicHeartbeatLocked(req)
	}
	if code := g.validateMemberLocked(req.MemberID, req.InstanceID, false); code != 0 {
		resp.ErrorCode = code
		return resp
	}
	if req.Generation != g.generation {
		resp.ErrorCode = kerr.IllegalGeneration.Code
		return resp
	}
	m := g.members[req.MemberID]
	switch g.state {
	case PreparingRebalance:
		g.touchLocked(m)
		resp.ErrorCode = kerr.RebalanceInProgress.Code
	case CompletingRebalance, Stable:
		// A member may heartbeat between its join answer and its sync.
		g.touchLocked(m)
	default:
		resp.ErrorCode = kerr.UnknownMemberID.Code
	}
	return resp
}

// Leave handles a LeaveGroup request: v0-v2 name one member, v3+ a batch
// (by member id, or by instance id alone to remove a static member, as the
// admin client does). Each member leaving a stable group starts a
// rebalance.
func (c *Coordinator) Leave(req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	codes := make([]int16, len(leaving))
	answer := func() *kmsg.LeaveGroupResponse {
		if req.Version < 3 {
			if resp.ErrorCode == 0 {
				resp.ErrorCode = codes[0]
			}
			return resp
		}
		if resp.ErrorCode != 0 {
			return resp
		}
		for i, lm := range leaving {
			rm := kmsg.NewLeaveGroupResponseMember()
			rm.MemberID = lm.MemberID
			rm.InstanceID = lm.InstanceID
			rm.ErrorCode = codes[i]
			resp.Members = append(resp.Members, rm)
		}
		return resp
	}
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return answer()
	}
	g, code := c.existing(req.Group)
	if code == kerr.NotCoordinator.Code {
		resp.ErrorCode = code
		return answer()
	}
	if code != 0 {
		for i := range codes {
			codes[i] = code
		}
		return answer()
	}
	defer g.mu.Unlock()
	if g.isConsumerGroupLocked() {
		for i, lm := range leaving {
			codes[i] = g.classicLeaveLocked(lm.MemberID, lm.InstanceID)
		}
		return answer()
	}
	for i, lm := range leaving {
		switch {
		case lm.MemberID == "":
			id, ok := "", false
			if lm.InstanceID != nil {
				id, ok = g.static[*lm.InstanceID]
			}
			if m := g.members[id]; ok && m != nil {
				g.c.log.Info("group: static member removed", "group", g.name, "instance", *lm.InstanceID)
				g.removeMemberLocked(m, true)
			} else {
				codes[i] = kerr.UnknownMemberID.Code
			}
		case g.isPendingLocked(lm.MemberID):
			g.stopPendingLocked(lm.MemberID)
			g.tryCompleteJoinLocked()
		default:
			if codes[i] = g.validateMemberLocked(lm.MemberID, lm.InstanceID, true); codes[i] == 0 {
				g.c.log.Debug("group: member left", "group", g.name, "member", lm.MemberID)
				g.removeMemberLocked(g.members[lm.MemberID], true)
			}
		}
	}
	g.maybeForgetLocked()
	return answer()
}

func (g *group) isPendingLocked(id string) bool {
	_, ok := g.pending[id]
	return ok
}

func cloneString(s *string) *string {
	if s == nil {
		return nil
	}
	v := *s
	return &v
}
