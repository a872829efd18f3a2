package group

import (
	"bytes"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
)

// State is a classic group's state, named as Kafka names it in
// DescribeGroups and ListGroups.
type State int8

// The states of Kafka's GroupMetadata. Dead is never held by a group in
// the coordinator's map: a group that dies is removed, and unknown groups
// are described as Dead.
const (
	Empty State = iota
	PreparingRebalance
	CompletingRebalance
	Stable
	Dead
)

// String returns the state's Kafka name.
func (s State) String() string {
	switch s {
	case Empty:
		return "Empty"
	case PreparingRebalance:
		return "PreparingRebalance"
	case CompletingRebalance:
		return "CompletingRebalance"
	case Stable:
		return "Stable"
	case Dead:
		return "Dead"
	}
	return "Unknown"
}

// group is one consumer group. mu guards everything but the offset I/O,
// which offMu serialises (see lockOffsets).
type group struct {
	c    *Coordinator
	name string

	// offMu serialises loading and writing the group's offsets, so the
	// store I/O happens without mu held and a commit never races a
	// delete of the same group. Taken before mu.
	offMu sync.Mutex

	mu sync.Mutex
	// dead: removed from the coordinator (deleted, or forgotten while
	// empty); a caller holding a stale pointer looks the group up again.
	dead bool
	// stopped: the coordinator closed; timers do nothing.
	stopped bool

	state      State
	generation int32
	// generationEpoch is the coordinator's lease epoch when generation
	// began; a generation from an earlier epoch takes no commits.
	generationEpoch int64
	protocolType    string // set by the first member, cleared when empty
	protocol        string // selected protocol of the current generation
	leader          string

	members map[string]*member
	// pending are member ids handed out with MEMBER_ID_REQUIRED (KIP-394)
	// that have not joined yet; each expires after its session timeout.
	pending map[string]*time.Timer
	// static maps group.instance.id to the current member id (KIP-345).
	static map[string]string
	// pendingSync are members that got their JoinGroup answer but have not
	// sent SyncGroup yet; they are removed if the rebalance timeout passes
	// first.
	pendingSync map[string]struct{}

	joinTimer *time.Timer // ends the join phase (PreparingRebalance)
	joinSeq   uint64      // identifies the armed joinTimer
	// initialDelay: the join phase of an empty group waits for more
	// members and ignores "everyone joined" until the delay ends.
	initialDelay   bool
	newMemberAdded bool
	syncTimer      *time.Timer // ends the pending-sync wait
	syncSeq        uint64

	// Offsets, written with offMu and mu held, read with mu held.
	offsetsLoaded bool
	// txnOffsets is set once the group took a transactional commit: its
	// offsets then also change when a transaction ends, which another
	// node's coordinator does in etcd, so every read loads them afresh.
	txnOffsets bool
	// offsetsVersion is the coordinator's ownership version when offsets
	// were loaded.
	offsetsVersion int64
	offsets        map[metadata.TP]metadata.CommittedOffset
	offBusy        bool // an offset operation holds offMu: do not forget the group

	// kind is what the group's members speak: "" until the first member
	// comes, kindClassic, kindConsumer (KIP-848, consumer.go) or
	// kindShare (KIP-932, share.go).
	kind string

	// Share group membership (share.go).
	smembers  map[string]*shareMember
	sepoch    int32  // group epoch
	sassigned int32  // the epoch the assignment was computed for
	ssig      string // subscribed topics and partition counts assigned for

	// KIP-848 consumer group (consumer.go).
	cons *consumerGroup
	// cmembers aliases cons.members (nil when cons is nil), for the checks
	// shared with classic and share groups.
	cmembers map[string]*consumerMember
}

// member is one member of a group.
type member struct {
	id         string
	instanceID *string
	clientID   string
	clientHost string

	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocolType     string
	protocols        []kmsg.JoinGroupRequestProtocol

	assignment []byte

	// join is set while the member waits for its JoinGroup answer, sync
	// while it waits for its SyncGroup answer. Each channel has room for
	// the one answer, so replying never blocks.
	join        chan *kmsg.JoinGroupResponse
	joinVersion int16
	sync        chan *kmsg.SyncGroupResponse
	syncVersion int16

	// deadline is when the session expires without another heartbeat;
	// timer checks it (it is not re-armed on every heartbeat).
	deadline time.Time
	timer    *time.Timer
}

func newGroup(c *Coordinator, name string) *group {
	return &group{
		c:           c,
		name:        name,
		members:     make(map[string]*member),
		pending:     make(map[string]*time.Timer),
		static:      make(map[string]string),
		pendingSync: make(map[string]struct{}),
	}
}

// matches reports whether protocols are exactly the member's (same names,
// order and metadata): a join that changes nothing.
func (m *member) matches(protocols []kmsg.JoinGroupRequestProtocol) bool {
	if len(m.protocols) != len(protocols) {
		return false
	}
	for i := range protocols {
		if m.protocols[i].Name != protocols[i].Name || !bytes.Equal(m.protocols[i].Metadata, protocols[i].Metadata) {
			return false
		}
	}
	return true
}

// metadataFor returns the member's metadata of protocol.
func (m *member) metadataFor(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// awaitingJoinCount returns how many members wait for a JoinGroup answer.
func (g *group) awaitingJoinCountLocked() int {
	n := 0
	for _, m := range g.members {
		if m.join != nil {
			n++
		}
	}
	return n
}

// supportsProtocolsLocked reports whether a member of protocolType with
// these protocols may join: the group's protocol type must match and at
// least one protocol must be one every current member supports. An empty
// group takes anything non-empty.
func (g *group) supportsProtocolsLocked(protocolType string, protocols []kmsg.JoinGroupRequestProtocol) bool {
	if protocolType == "" || len(protocols) == 0 {
		return false
	}
	if len(g.members) == 0 {
		return true
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range protocols {
		all := true
		for _, m := range g.members {
			if !hasProtocol(m.protocols, p.Name) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func hasProtocol(ps []kmsg.JoinGroupRequestProtocol, name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}

// selectProtocolLocked picks the next generation's protocol as Kafka does:
// among the protocols every member supports, each member votes for the
// first one in its own preference order; the most votes win (ties go to the
// name first in the leader's preference, so the choice is deterministic).
func (g *group) selectProtocolLocked() string {
	var candidates []string
	if leader := g.members[g.leader]; leader != nil {
		for _, p := range leader.protocols {
			candidates = append(candidates, p.Name)
		}
	} else {
		for _, m := range g.members {
			for _, p := range m.protocols {
				candidates = append(candidates, p.Name)
			}
			break
		}
	}
	supported := candidates[:0:0]
	for _, name := range candidates {
		all := true
		for _, m := range g.members {
			if !hasProtocol(m.protocols, name) {
				all = false
				break
			}
		}
		if all {
			supported = append(supported, name)
		}
	}
	votes := make(map[string]int, len(supported))
	for _, m := range g.members {
		for _, p := range m.protocols {
			if hasProtocolName(supported, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best, bestVotes := "", -1
	for _, name := range supported {
		if votes[name] > bestVotes {
			best, bestVotes = name, votes[name]
		}
	}
	return best
}

func hasProtocolName(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

// maxRebalanceTimeoutLocked is the group's rebalance timeout: the longest
// any member asked for.
func (g *group) maxRebalanceTimeoutLocked() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// addMemberLocked adds m (waiting for its JoinGroup answer) and starts or
// joins a rebalance.
func (g *group) addMemberLocked(m *member) {
	if len(g.members) == 0 {
		g.protocolType = m.protocolType
	}
	if g.leader == "" {
		g.leader = m.id
	}
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	g.members[m.id] = m
	g.c.m.members.Inc()
	g.stopPendingLocked(m.id)
	if g.state == PreparingRebalance && g.generation == 0 {
		g.newMemberAdded = true
	}
	g.touchLocked(m)
	g.maybePrepareRebalanceLocked()
}

// updateMemberLocked records a known member's new join and starts or joins
// a rebalance.
func (g *group) updateMemberLocked(m *member, req *kmsg.JoinGroupRequest, session, rebalance time.Duration, ch chan *kmsg.JoinGroupResponse) {
	m.protocols = req.Protocols
	m.protocolType = req.ProtocolType
	m.sessionTimeout, m.rebalanceTimeout = session, rebalance
	g.setJoinWaiterLocked(m, ch, req.Version)
	g.touchLocked(m)
	g.maybePrepareRebalanceLocked()
}

// setJoinWaiterLocked makes ch the member's pending JoinGroup answer. A
// member that joins again while an earlier join still waits (its client
// timed out and retried) gets the earlier one answered with
// REBALANCE_IN_PROGRESS, so no request is left hanging.
func (g *group) setJoinWaiterLocked(m *member, ch chan *kmsg.JoinGroupResponse, version int16) {
	if m.join != nil {
		resp := newJoinResponse(m.joinVersion)
		resp.MemberID = m.id
		resp.ErrorCode = kerr.RebalanceInProgress.Code
		g.replyJoinLocked(m, resp)
	}
	m.join, m.joinVersion = ch, version
}

// replyJoinLocked answers the member's waiting JoinGroup, if any.
func (g *group) replyJoinLocked(m *member, resp *kmsg.JoinGroupResponse) {
	if m.join == nil {
		return
	}
	m.join <- resp
	m.join = nil
}

// replySyncLocked answers the member's waiting SyncGroup, if any.
func (g *group) replySyncLocked(m *member, resp *kmsg.SyncGroupResponse) {
	if m.sync == nil {
		return
	}
	m.sync <- resp
	m.sync = nil
}

// syncErrorLocked answers the member's waiting SyncGroup with code.
func (g *group) syncErrorLocked(m *member, code int16) {
	if m.sync == nil {
		return
	}
	resp := newSyncResponse(m.syncVersion)
	resp.ErrorCode = code
	g.replySyncLocked(m, resp)
}

// joinErrorLocked answers the member's waiting JoinGroup with code.
func (g *group) joinErrorLocked(m *member, code int16) {
	if m.join == nil {
		return
	}
	resp := newJoinResponse(m.joinVersion)
	resp.MemberID = m.id
	resp.ErrorCode = code
	g.replyJoinLocked(m, resp)
}

// maybePrepareRebalanceLocked starts a rebalance unless one is already
// collecting joins, in which case it checks whether the join phase can
// end now.
func (g *group) maybePrepareRebalanceLocked() {
	switch g.state {
	case Empty, Stable, CompletingRebalance:
		g.prepareRebalanceLocked()
	case PreparingRebalance:
		g.tryCompleteJoinLocked()
	}
}

// prepareRebalanceLocked moves the group to PreparingRebalance: members
// waiting for a SyncGroup answer are told REBALANCE_IN_PROGRESS (they join
// again) and the join phase is bounded by the rebalance timeout.
func (g *group) prepareRebalanceLocked() {
	if g.state == CompletingRebalance {
		for _, m := range g.members {
			m.assignment = nil
			g.syncErrorLocked(m, kerr.RebalanceInProgress.Code)
		}
	}
	g.clearPendingSyncLocked()
	wasEmpty := g.state == Empty
	g.state = PreparingRebalance
	g.c.stopTimer(g.joinTimer)
	g.joinSeq++
	timeout := g.maxRebalanceTimeoutLocked()
	if delay := g.c.cfg.InitialRebalanceDelay; wasEmpty && delay > 0 {
		d := min(delay, timeout)
		g.initialDelay = true
		g.newMemberAdded = false
		g.armInitialDelayLocked(d, max(timeout-d, 0))
		return
	}
	g.initialDelay = false
	g.armJoinTimerLocked(timeout)
	g.tryCompleteJoinLocked()
}

// armInitialDelayLocked waits d for more members to join an empty group.
// As long as members keep arriving and the rebalance timeout is not used up
// (remaining), it waits again, as Kafka's InitialDelayedJoin does.
func (g *group) armInitialDelayLocked(d, remaining time.Duration) {
	seq := g.joinSeq
	g.joinTimer = g.c.afterFunc(g, d, func() {
		if seq != g.joinSeq || g.state != PreparingRebalance {
			return
		}
		g.joinTimer = nil
		if g.newMemberAdded && remaining > 0 {
			g.newMemberAdded = false
			next := min(g.c.cfg.InitialRebalanceDelay, remaining)
			g.joinSeq++
			g.armInitialDelayLocked(next, remaining-next)
			return
		}
		g.initialDelay = false
		g.completeJoinLocked()
	})
}

func (g *group) armJoinTimerLocked(d time.Duration) {
	g.joinSeq++
	seq := g.joinSeq
	g.joinTimer = g.c.afterFunc(g, d, func() {
		if seq != g.joinSeq || g.state != PreparingRebalance {
			return
		}
		g.joinTimer = nil
		g.completeJoinLocked()
	})
}

// tryCompleteJoinLocked ends the join phase once every member has joined
// and no member id handed out with MEMBER_ID_REQUIRED is still outstanding.
func (g *group) tryCompleteJoinLocked() {
	if g.state != PreparingRebalance || g.initialDelay {
		return
	}
	if g.awaitingJoinCountLocked() == len(g.members) && len(g.pending) == 0 {
		g.completeJoinLocked()
	}
}

// completeJoinLocked ends the join phase (everyone joined, or the
// rebalance timeout passed): dynamic members that did not join again are
// removed (static ones stay until their session expires, as in Kafka), a
// new generation starts, and every waiting member gets its answer, the
// leader with all members' metadata.
func (g *group) completeJoinLocked() {
	g.c.stopTimer(g.joinTimer)
	g.joinTimer = nil
	g.joinSeq++
	g.initialDelay = false
	for _, m := range g.members {
		if m.join == nil && m.instanceID == nil {
			g.c.log.Info("group: removing member that did not rejoin", "group", g.name, "member", m.id)
			g.deleteMemberLocked(m)
		}
	}
	if len(g.members) > 0 && !g.electJoinedLeaderLocked() {
		// Only static members that have not rejoined are left: wait
		// another rebalance timeout for them (their sessions may end
		// first), as Kafka does.
		g.armJoinTimerLocked(g.maxRebalanceTimeoutLocked())
		return
	}
	g.generation++
	g.generationEpoch = g.c.leaseEpoch()
	g.c.m.rebalances.Inc()
	if len(g.members) == 0 {
		// The protocol type stays, as in Kafka: listing tools show an
		// emptied consumer group as one.
		g.state = Empty
		g.protocol = ""
		g.leader = ""
		g.maybeForgetLocked()
		return
	}
	g.state = CompletingRebalance
	g.protocol = g.selectProtocolLocked()
	for _, m := range g.members {
		resp := g.joinResultLocked(m, newJoinResponse(m.joinVersion))
		g.replyJoinLocked(m, resp)
		g.touchLocked(m)
		g.pendingSync[m.id] = struct{}{}
	}
	g.armSyncTimerLocked()
	g.c.log.Debug("group: join phase complete", "group", g.name, "generation", g.generation,
		"protocol", g.protocol, "leader", g.leader, "members", len(g.members))
}

// electJoinedLeaderLocked keeps the leader if it joined this generation,
// else makes any member that did the leader. False if none joined.
func (g *group) electJoinedLeaderLocked() bool {
	if m := g.members[g.leader]; m != nil && m.join != nil {
		return true
	}
	for _, m := range g.members {
		if m.join != nil {
			g.leader = m.id
			return true
		}
	}
	return false
}

// joinResultLocked fills a successful JoinGroup answer for m: the current
// generation, and for the leader every member's metadata of the selected
// protocol.
func (g *group) joinResultLocked(m *member, resp *kmsg.JoinGroupResponse) *kmsg.JoinGroupResponse {
	resp.MemberID = m.id
	resp.Generation = g.generation
	resp.ProtocolType = kmsg.StringPtr(g.protocolType)
	resp.Protocol = kmsg.StringPtr(g.protocol)
	resp.LeaderID = g.leader
	if m.id == g.leader {
		resp.Members = g.memberMetadataLocked()
	}
	return resp
}

// memberMetadataLocked lists every member with its metadata of the
// selected protocol, for the leader's assignor.
func (g *group) memberMetadataLocked() []kmsg.JoinGroupResponseMember {
	out := make([]kmsg.JoinGroupResponseMember, 0, len(g.members))
	for _, m := range g.members {
		jm := kmsg.NewJoinGroupResponseMember()
		jm.MemberID = m.id
		jm.InstanceID = m.instanceID
		jm.ProtocolMetadata = m.metadataFor(g.protocol)
		out = append(out, jm)
	}
	return out
}

// armSyncTimerLocked bounds the wait for SyncGroup after a join phase:
// members that have not synced within the rebalance timeout are removed
// and the group rebalances without them.
func (g *group) armSyncTimerLocked() {
	g.c.stopTimer(g.syncTimer)
	g.syncSeq++
	seq := g.syncSeq
	g.syncTimer = g.c.afterFunc(g, g.maxRebalanceTimeoutLocked(), func() {
		if seq != g.syncSeq {
			return
		}
		g.syncTimer = nil
		if len(g.pendingSync) == 0 || (g.state != CompletingRebalance && g.state != Stable) {
			return
		}
		for id := range g.pendingSync {
			if m := g.members[id]; m != nil {
				g.c.log.Info("group: removing member that did not sync", "group", g.name, "member", id)
				g.removeMemberLocked(m, false)
			}
		}
		clear(g.pendingSync)
		g.maybePrepareRebalanceLocked()
	})
}

func (g *group) clearPendingSyncLocked() {
	clear(g.pendingSync)
	g.c.stopTimer(g.syncTimer)
	g.syncTimer = nil
	g.syncSeq++
}

// completeSyncLocked installs the leader's assignments (members it left
// out get an empty one), answers every waiting SyncGroup and makes the
// group Stable.
func (g *group) completeSyncLocked(assignments []kmsg.SyncGroupRequestGroupAssignment) {
	for _, m := range g.members {
		m.assignment = nil
	}
	for _, a := range assignments {
		if m := g.members[a.MemberID]; m != nil {
			m.assignment = a.MemberAssignment
		}
	}
	for _, m := range g.members {
		if len(m.assignment) == 0 && g.protocolType == "consumer" {
			// Kafka passes empty bytes on, but some consumers fail to
			// decode them; an empty consumer assignment means the same.
			m.assignment = emptyConsumerAssignment()
		}
		if m.sync != nil {
			g.replySyncLocked(m, g.syncResultLocked(m, newSyncResponse(m.syncVersion)))
			g.touchLocked(m)
		}
	}
	g.state = Stable
	if len(g.pendingSync) == 0 {
		g.clearPendingSyncLocked()
	}
}

func emptyConsumerAssignment() []byte {
	var a kmsg.ConsumerMemberAssignment
	return a.AppendTo(nil)
}

// syncResultLocked fills a successful SyncGroup answer for m.
func (g *group) syncResultLocked(m *member, resp *kmsg.SyncGroupResponse) *kmsg.SyncGroupResponse {
	resp.ProtocolType = kmsg.StringPtr(g.protocolType)
	resp.Protocol = kmsg.StringPtr(g.protocol)
	resp.MemberAssignment = m.assignment
	return resp
}

// touchLocked records a sign of life of m: its session now ends a session
// timeout from now. The timer is armed once and re-armed when it fires
// early, so a heartbeat costs no timer operation.
func (g *group) touchLocked(m *member) {
	m.deadline = time.Now().Add(m.sessionTimeout)
	if m.timer == nil {
		g.armSessionLocked(m, m.sessionTimeout)
	}
}

func (g *group) armSessionLocked(m *member, d time.Duration) {
	m.timer = g.c.afterFunc(g, d, func() {
		m.timer = nil
		if g.members[m.id] != m {
			return
		}
		now := time.Now()
		if m.join != nil || m.sync != nil {
			// A member waiting for an answer cannot heartbeat; the
			// rebalance and sync timeouts bound its wait instead.
			m.deadline = now.Add(m.sessionTimeout)
		}
		if now.Before(m.deadline) {
			g.armSessionLocked(m, m.deadline.Sub(now))
			return
		}
		g.c.log.Info("group: member session expired", "group", g.name, "member", m.id)
		g.removeMemberLocked(m, true)
	})
}

// addPendingLocked records a member id handed out with MEMBER_ID_REQUIRED;
// it is forgotten unless the member joins within its session timeout.
func (g *group) addPendingLocked(id string, session time.Duration) {
	g.pending[id] = g.c.afterFunc(g, session, func() {
		if _, ok := g.pending[id]; !ok {
			return
		}
		delete(g.pending, id)
		g.tryCompleteJoinLocked()
		g.maybeForgetLocked()
	})
}

func (g *group) stopPendingLocked(id string) {
	if t, ok := g.pending[id]; ok {
		g.c.stopTimer(t)
		delete(g.pending, id)
	}
}

// deleteMemberLocked drops m from the group's maps without any state
// change; its waiting requests are answered UNKNOWN_MEMBER_ID.
func (g *group) deleteMemberLocked(m *member) {
	g.joinErrorLocked(m, kerr.UnknownMemberID.Code)
	g.syncErrorLocked(m, kerr.UnknownMemberID.Code)
	g.c.stopTimer(m.timer)
	m.timer = nil
	delete(g.members, m.id)
	delete(g.pendingSync, m.id)
	g.c.m.members.Dec()
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
		for id := range g.members {
			g.leader = id
			break
		}
	}
}

// removeMemberLocked removes m (it left, or its session or sync wait
// expired) and moves the group on: a stable or completing group
// rebalances, a group collecting joins checks whether it is done. With
// rebalance unset the caller decides (it removes several members first).
func (g *group) removeMemberLocked(m *member, rebalance bool) {
	g.deleteMemberLocked(m)
	if !rebalance {
		return
	}
	switch g.state {
	case Stable, CompletingRebalance:
		g.prepareRebalanceLocked()
	case PreparingRebalance:
		g.tryCompleteJoinLocked()
	}
}

// maybeForgetLocked removes an empty group that has nothing to remember:
// no members, no outstanding member ids, no committed offsets (as far as
// the cache knows, with no offset operation under way). Its next use
// starts afresh, as in Kafka, where such a group is cleaned up.
func (g *group) maybeForgetLocked() {
	if g.dead || g.state != Empty || g.offBusy || !g.offsetsLoaded || g.existsLocked() {
		return
	}
	g.dieLocked()
}

// existsLocked reports whether the group is more than a name: it has
// members, outstanding member ids or (as far as the cache knows) committed
// offsets. A group that is not is described as Dead and cannot be deleted.
func (g *group) existsLocked() bool {
	return len(g.members) > 0 || len(g.pending) > 0 || len(g.offsets) > 0 || len(g.smembers) > 0 || len(g.cmembers) > 0
}

// dieLocked removes the group from the coordinator and stops its timers.
func (g *group) dieLocked() {
	g.dead = true
	g.stopTimersLocked()
	g.c.forgetLocked(g)
}

func (g *group) stopTimersLocked() {
	g.c.stopTimer(g.joinTimer)
	g.joinTimer = nil
	g.joinSeq++
	g.c.stopTimer(g.syncTimer)
	g.syncTimer = nil
	g.syncSeq++
	for id, t := range g.pending {
		g.c.stopTimer(t)
		delete(g.pending, id)
	}
	for _, m := range g.members {
		g.c.stopTimer(m.timer)
		m.timer = nil
	}
	for _, m := range g.smembers {
		g.c.stopTimer(m.timer)
		m.timer = nil
	}
	for _, m := range g.cmembers {
		m.stopTimers(g.c)
	}
}

// shutdownLocked is Close's work on one group: every waiting request is
// answered NOT_COORDINATOR and no timer will act again.
func (g *group) shutdownLocked() {
	g.stopped = true
	g.stopTimersLocked()
	for _, m := range g.members {
		g.joinErrorLocked(m, kerr.NotCoordinator.Code)
		g.syncErrorLocked(m, kerr.NotCoordinator.Code)
	}
}

func newJoinResponse(version int16) *kmsg.JoinGroupResponse {
	r := kmsg.NewPtrJoinGroupResponse()
	r.Version = version
	return r
}

func newSyncResponse(version int16) *kmsg.SyncGroupResponse {
	r := kmsg.NewPtrSyncGroupResponse()
	r.Version = version
	return r
}
