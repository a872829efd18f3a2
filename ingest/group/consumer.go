package group

// KIP-848 consumer groups: ConsumerGroupHeartbeat and ConsumerGroupDescribe,
// server-side assignment (uniform, range), incremental reconciliation with
// member epochs, static membership, regex subscriptions, and classic-protocol
// members (JoinGroup/SyncGroup/Heartbeat) in the same group.
//
// The state (group epoch, target assignment, every member with its epoch,
// subscription and owned partitions) is stored in etcd on every change,
// before the answer (metadata.PutConsumerGroupState), so a coordinator that
// takes the group over carries on with the same epochs: members keep their
// partitions and heartbeat on, with no rebalance.
//
// A partition moves from member A to member B in steps: A's target loses
// it; A's next heartbeat answer leaves it out (A keeps its epoch: it must
// revoke); A's next heartbeat no longer lists it as owned, which frees it;
// B's next heartbeat gets it, at the new epoch. No partition is ever
// assigned to two members at once.

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
)

// Member reconciliation states.
const (
	cmStable     = "stable"
	cmUnrevoked  = "unrevoked_partitions"
	cmUnreleased = "unreleased_partitions"
)

// parts is a set of partitions by topic name.
type parts map[string][]int32

func (p parts) has(t string, n int32) bool { return slices.Contains(p[t], n) }

func (p parts) add(t string, n int32) {
	if !p.has(t, n) {
		p[t] = append(p[t], n)
		slices.Sort(p[t])
	}
}

func (p parts) remove(t string, n int32) {
	if i := slices.Index(p[t], n); i >= 0 {
		p[t] = slices.Delete(p[t], i, i+1)
		if len(p[t]) == 0 {
			delete(p, t)
		}
	}
}

func (p parts) count() int {
	n := 0
	for _, ps := range p {
		n += len(ps)
	}
	return n
}

func (p parts) clone() parts {
	out := make(parts, len(p))
	for t, ps := range p {
		out[t] = slices.Clone(ps)
	}
	return out
}

func (p parts) each(f func(t string, n int32)) {
	for _, t := range sortedKeys(p) {
		for _, n := range p[t] {
			f(t, n)
		}
	}
}

// consumerMember is a member of a consumer group, of either protocol.
type consumerMember struct {
	ID         string  `json:"id"`
	InstanceID *string `json:"instance,omitempty"`
	RackID     *string `json:"rack,omitempty"`
	ClientID   string  `json:"client"`
	Host       string  `json:"host"`
	Topics     []string
	Regex      string `json:",omitempty"`
	Assignor   string `json:",omitempty"`
	Epoch      int32
	PrevEpoch  int32
	State      string
	Assigned   parts // what the member may own now
	Pending    parts // what it must revoke (still owns)
	Target     parts
	// AssignedAt is the member epoch at which each partition it owns
	// ("topic/partition") was given to it: a commit at an older epoch is
	// taken for the partitions given no later than that epoch (KIP-1251).
	AssignedAt map[string]int32 `json:",omitempty"`
	// RebalanceMs bounds how long a revocation may take; SessionMs the
	// silence before the member is removed.
	RebalanceMs int64
	SessionMs   int64
	// Left: a static member left with epoch -2; its partitions wait for
	// it to come back within its session.
	Left bool `json:",omitempty"`
	// Classic: a member speaking JoinGroup/SyncGroup; Protocols are its
	// join protocols.
	Classic   bool                            `json:",omitempty"`
	Protocols []kmsg.JoinGroupRequestProtocol `json:",omitempty"`

	re          *regexp.Regexp
	deadline    time.Time
	timer       *time.Timer
	revokeTimer *time.Timer
}

func (m *consumerMember) stopTimers(c *Coordinator) {
	c.stopTimer(m.timer)
	m.timer = nil
	c.stopTimer(m.revokeTimer)
	m.revokeTimer = nil
}

// consumerGroup is a KIP-848 group's state; it is what etcd stores.
type consumerGroup struct {
	Epoch         int32
	AssignEpoch   int32
	Assignor      string
	Sig           string // subscribed topics and partition counts assigned for
	Members       map[string]*consumerMember
	Static        map[string]string // instance id -> member id
	owner         map[metadata.TP]string
	loadedVersion int64
}

func newConsumerGroup() *consumerGroup {
	return &consumerGroup{Assignor: "uniform", Members: map[string]*consumerMember{}, Static: map[string]string{}, owner: map[metadata.TP]string{}}
}

// rebuildOwners recomputes which member owns each partition.
func (cg *consumerGroup) rebuildOwners() {
	cg.owner = map[metadata.TP]string{}
	for _, m := range cg.Members {
		m.Assigned.each(func(t string, n int32) { cg.owner[metadata.TP{Topic: t, Partition: n}] = m.ID })
		m.Pending.each(func(t string, n int32) { cg.owner[metadata.TP{Topic: t, Partition: n}] = m.ID })
	}
}

const storeTimeout = 5 * time.Second

// loadConsumerLocked makes g a consumer group if it may be one, loading its
// stored state when this node has none or the group may have been
// coordinated elsewhere since. code is the error to answer otherwise.
func (g *group) loadConsumerLocked() int16 {
	if g.kind == kindShare {
		return kerr.GroupIDNotFound.Code
	}
	if g.kind == kindClassic && len(g.members) > 0 {
		if code := g.upgradeClassicLocked(); code != 0 {
			return code
		}
	}
	v := g.c.ownershipVersion()
	if g.cons != nil && g.cons.loadedVersion == v {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	raw, err := g.c.store.ConsumerGroupState(ctx, g.name)
	if err != nil {
		g.c.log.Warn("group: loading consumer group state", "group", g.name, "err", err)
		return kerr.CoordinatorLoadInProgress.Code
	}
	if g.cons != nil {
		for _, m := range g.cons.Members {
			m.stopTimers(g.c)
		}
		g.c.m.members.Sub(float64(len(g.cons.Members)))
	}
	cg := newConsumerGroup()
	if raw != nil {
		if err := json.Unmarshal(raw, cg); err != nil {
			g.c.log.Warn("group: bad consumer group state", "group", g.name, "err", err)
			return kerr.CoordinatorLoadInProgress.Code
		}
		if cg.Members == nil {
			cg.Members = map[string]*consumerMember{}
		}
		if cg.Static == nil {
			cg.Static = map[string]string{}
		}
	}
	cg.loadedVersion = v
	g.cons, g.cmembers = cg, cg.Members
	for _, m := range cg.Members {
		if m.Assigned == nil {
			m.Assigned = parts{}
		}
		if m.Pending == nil {
			m.Pending = parts{}
		}
		if m.Target == nil {
			m.Target = parts{}
		}
		if m.Regex != "" {
			m.re, _ = regexp.Compile("^(?:" + m.Regex + ")$")
		}
		g.touchConsumerLocked(m)
		if m.Pending.count() > 0 {
			g.armRevokeLocked(m)
		}
	}
	g.c.m.members.Add(float64(len(cg.Members)))
	cg.rebuildOwners()
	if len(cg.Members) > 0 || raw != nil {
		g.kind = kindConsumer
	}
	return 0
}

// storeConsumerLocked writes the group's state; on failure the in-memory
// state is dropped (the next request loads what etcd has) and the caller
// answers with the returned code.
func (g *group) storeConsumerLocked() int16 {
	raw, err := json.Marshal(g.cons)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		err = g.c.store.PutConsumerGroupState(ctx, g.name, raw)
		cancel()
	}
	if err != nil {
		g.c.log.Warn("group: storing consumer group state", "group", g.name, "err", err)
		g.cons.loadedVersion = -1 // reload
		return kerr.CoordinatorNotAvailable.Code
	}
	return 0
}

// ConsumerGroupHeartbeat handles a KIP-848 heartbeat: epoch 0 joins (or
// rejoins, owning nothing), -1 leaves, -2 is a static member's temporary
// leave, any other epoch is the member's current one (or its previous one,
// when the answer that moved it on was lost and it owns nothing it should
// not).
func (c *Coordinator) ConsumerGroupHeartbeat(cl Client, req *kmsg.ConsumerGroupHeartbeatRequest) *kmsg.ConsumerGroupHeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	fail := func(code int16, msg string) *kmsg.ConsumerGroupHeartbeatResponse {
		resp.ErrorCode = code
		if msg != "" {
			resp.ErrorMessage = kmsg.StringPtr(msg)
		}
		return resp
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID.Code, "")
	}
	if req.MemberEpoch == 0 {
		switch {
		case req.RebalanceTimeoutMillis <= 0:
			return fail(kerr.InvalidRequest.Code, "RebalanceTimeoutMs must be set when joining")
		case req.SubscribedTopicNames == nil && req.SubscribedTopicRegex == nil:
			return fail(kerr.InvalidRequest.Code, "SubscribedTopicNames or SubscribedTopicRegex must be set when joining")
		case req.Topics == nil || len(req.Topics) > 0:
			return fail(kerr.InvalidRequest.Code, "TopicPartitions must be empty when (re-)joining")
		}
	} else if req.MemberID == "" {
		return fail(kerr.InvalidRequest.Code, "MemberId can't be empty")
	}
	if req.ServerAssignor != nil && *req.ServerAssignor != "uniform" && *req.ServerAssignor != "range" {
		return fail(kerr.UnsupportedAssignor.Code, fmt.Sprintf("assignor %q is not served: uniform or range", *req.ServerAssignor))
	}
	var re *regexp.Regexp
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != "" {
		var err error
		if re, err = regexp.Compile("^(?:" + *req.SubscribedTopicRegex + ")$"); err != nil {
			return fail(kerr.InvalidRegularExpression.Code, err.Error())
		}
	}
	interval, session := c.groupDurations(req.Group, "consumer.")
	resp.HeartbeatIntervalMillis = int32(interval / time.Millisecond)
	for range maxLookups {
		g, err := c.lookup(req.Group, true)
		if err != nil {
			return fail(kerr.NotCoordinator.Code, "")
		}
		code, retry := g.lockLive()
		if retry {
			continue
		}
		if code != 0 {
			return fail(code, "")
		}
		out := g.consumerHeartbeatLocked(cl, req, resp, re, session)
		g.mu.Unlock()
		return out
	}
	return fail(kerr.CoordinatorNotAvailable.Code, "")
}

func (g *group) consumerHeartbeatLocked(cl Client, req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse, re *regexp.Regexp, session time.Duration) *kmsg.ConsumerGroupHeartbeatResponse {
	if code := g.loadConsumerLocked(); code != 0 {
		resp.ErrorCode = code
		return resp
	}
	g.kind = kindConsumer
	cg := g.cons
	before, _ := json.Marshal(cg)
	var m *consumerMember
	send := false
	switch req.MemberEpoch {
	case 0:
		var code int16
		if m, code = g.consumerJoinLocked(cl, req, re, session); code != 0 {
			resp.ErrorCode = code
			return resp
		}
		send = true
	case -1, -2:
		m = cg.Members[req.MemberID]
		if m == nil {
			resp.ErrorCode = kerr.UnknownMemberID.Code
			return resp
		}
		resp.MemberID, resp.MemberEpoch = kmsg.StringPtr(m.ID), req.MemberEpoch
		if req.MemberEpoch == -2 && m.InstanceID != nil {
			// A static member leaving for a while keeps its
			// partitions for its session timeout.
			m.Left = true
			m.deadline = time.Now().Add(time.Duration(m.SessionMs) * time.Millisecond)
		} else {
			g.removeConsumerMemberLocked(m)
		}
		g.assignConsumerLocked()
		if code := g.storeIfChangedLocked(before); code != 0 {
			resp.ErrorCode = code
		}
		return resp
	default:
		m = cg.Members[req.MemberID]
		if m == nil || m.Left {
			resp.ErrorCode = kerr.UnknownMemberID.Code
			if req.InstanceID != nil {
				if id, ok := cg.Static[*req.InstanceID]; ok && id != req.MemberID {
					resp.ErrorCode = kerr.FencedInstanceID.Code
				}
			}
			return resp
		}
		if m.Classic {
			resp.ErrorCode = kerr.UnknownMemberID.Code
			return resp
		}
		if req.MemberEpoch != m.Epoch {
			if req.MemberEpoch != m.PrevEpoch || req.Topics == nil || !ownedWithin(g, req.Topics, m.Assigned) {
				resp.ErrorCode = kerr.FencedMemberEpoch.Code
				return resp
			}
		}
		if req.RebalanceTimeoutMillis > 0 {
			m.RebalanceMs = int64(req.RebalanceTimeoutMillis)
		}
		m.SessionMs = session.Milliseconds()
		if g.updateSubscriptionLocked(m, req, re) {
			cg.Epoch++
		}
		if req.Topics != nil {
			send = true
		}
	}
	g.touchConsumerLocked(m)
	var owned parts
	if req.Topics != nil {
		owned = g.ownedFromRequest(req.Topics)
	}
	g.assignConsumerLocked()
	if g.reconcileLocked(m, owned) {
		send = true
	}
	if code := g.storeIfChangedLocked(before); code != 0 {
		resp.ErrorCode = code
		return resp
	}
	resp.MemberID = kmsg.StringPtr(m.ID)
	resp.MemberEpoch = m.Epoch
	if send {
		a := &kmsg.ConsumerGroupHeartbeatResponseAssignment{}
		for _, t := range sortedKeys(m.Assigned) {
			if tt, ok := g.c.store.Topic(t); ok {
				at := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
				at.TopicID, at.Partitions = tt.ID, slices.Clone(m.Assigned[t])
				a.Topics = append(a.Topics, at)
			}
		}
		resp.Assignment = a
	}
	return resp
}

// storeIfChangedLocked stores the group's state if it differs from before.
func (g *group) storeIfChangedLocked(before []byte) int16 {
	after, _ := json.Marshal(g.cons)
	if string(after) == string(before) {
		return 0
	}
	return g.storeConsumerLocked()
}

// consumerJoinLocked adds or resets the member of an epoch-0 heartbeat.
func (g *group) consumerJoinLocked(cl Client, req *kmsg.ConsumerGroupHeartbeatRequest, re *regexp.Regexp, session time.Duration) (*consumerMember, int16) {
	cg := g.cons
	id := req.MemberID
	if id == "" {
		id = newMemberID(cl.ID, req.InstanceID)
	}
	var inherit *consumerMember
	if req.InstanceID != nil {
		if oldID, ok := cg.Static[*req.InstanceID]; ok && oldID != id {
			if old := cg.Members[oldID]; old != nil {
				if !old.Left {
					return nil, kerr.UnreleasedInstanceID.Code
				}
				inherit = old
				old.stopTimers(g.c)
				delete(cg.Members, oldID)
				g.c.m.members.Dec()
			}
		}
	}
	m := cg.Members[id]
	if m == nil {
		m = &consumerMember{ID: id, Assigned: parts{}, Pending: parts{}, Target: parts{}, State: cmStable}
		if inherit != nil {
			// The static member's replacement takes its place: its
			// partitions, at its epoch.
			m.Assigned, m.Target, m.Epoch, m.PrevEpoch = inherit.Assigned, inherit.Target, inherit.Epoch, inherit.PrevEpoch
			m.AssignedAt = inherit.AssignedAt
			m.Pending = inherit.Pending
		} else {
			cg.Epoch++
		}
		cg.Members[id] = m
		g.c.m.members.Inc()
		g.cmembers = cg.Members
	} else if !m.Left {
		// An epoch-0 heartbeat of a known member: it owns nothing now.
		m.Assigned, m.Pending, m.Epoch, m.PrevEpoch, m.State = parts{}, parts{}, 0, 0, cmStable
		m.AssignedAt = nil
	}
	m.Left = false
	if req.InstanceID != nil {
		cg.Static[*req.InstanceID] = id
	}
	m.InstanceID, m.RackID, m.ClientID, m.Host = cloneString(req.InstanceID), cloneString(req.RackID), cl.ID, cl.Host
	m.RebalanceMs, m.SessionMs = int64(req.RebalanceTimeoutMillis), session.Milliseconds()
	if g.updateSubscriptionLocked(m, req, re) {
		cg.Epoch++
	}
	cg.rebuildOwners()
	return m, 0
}

// updateSubscriptionLocked applies a heartbeat's subscription and assignor;
// it reports whether the subscription changed.
func (g *group) updateSubscriptionLocked(m *consumerMember, req *kmsg.ConsumerGroupHeartbeatRequest, re *regexp.Regexp) bool {
	changed := false
	if req.SubscribedTopicNames != nil {
		topics := slices.Clone(req.SubscribedTopicNames)
		sort.Strings(topics)
		if !slices.Equal(topics, m.Topics) {
			m.Topics, changed = topics, true
		}
	}
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != m.Regex {
		m.Regex, m.re, changed = *req.SubscribedTopicRegex, re, true
	}
	if req.ServerAssignor != nil && *req.ServerAssignor != m.Assignor {
		m.Assignor = *req.ServerAssignor
		g.cons.Assignor = m.Assignor
		changed = true
	}
	return changed
}

// ownedFromRequest turns a heartbeat's owned partitions into names.
func (g *group) ownedFromRequest(ts []kmsg.ConsumerGroupHeartbeatRequestTopic) parts {
	out := parts{}
	for _, t := range ts {
		if tt, ok := g.c.store.TopicByID(t.TopicID); ok {
			for _, p := range t.Partitions {
				out.add(tt.Name, p)
			}
		}
	}
	return out
}

func ownedWithin(g *group, ts []kmsg.ConsumerGroupHeartbeatRequestTopic, assigned parts) bool {
	owned := g.ownedFromRequest(ts)
	ok := true
	owned.each(func(t string, n int32) {
		if !assigned.has(t, n) {
			ok = false
		}
	})
	return ok
}

// subscribedLocked returns the topics m subscribes to now (names that
// exist and regex matches, internal topics excluded).
func (g *group) subscribedLocked(m *consumerMember, all []metadata.Topic) []string {
	var out []string
	for _, t := range m.Topics {
		if _, ok := g.c.store.Topic(t); ok {
			out = append(out, t)
		}
	}
	if m.re != nil {
		for _, t := range all {
			if !strings.HasPrefix(t.Name, "__") && m.re.MatchString(t.Name) && !slices.Contains(out, t.Name) {
				out = append(out, t.Name)
			}
		}
	}
	sort.Strings(out)
	return out
}

// assignConsumerLocked computes a new target assignment when the group
// epoch moved past the assignment's or the subscribed topics changed.
func (g *group) assignConsumerLocked() {
	cg := g.cons
	var all []metadata.Topic
	for _, m := range cg.Members {
		if m.re != nil {
			all = g.c.store.Topics()
			break
		}
	}
	subs := map[string][]string{}
	topics := map[string]int32{}
	for _, m := range cg.Members {
		ts := g.subscribedLocked(m, all)
		subs[m.ID] = ts
		for _, t := range ts {
			if tt, ok := g.c.store.Topic(t); ok {
				topics[t] = tt.Partitions
			}
		}
	}
	var b strings.Builder
	for _, t := range sortedKeys(topics) {
		fmt.Fprintf(&b, "%s:%d,", t, topics[t])
	}
	if sig := b.String(); sig != cg.Sig {
		cg.Sig = sig
		cg.Epoch++
	}
	if cg.AssignEpoch == cg.Epoch {
		return
	}
	cg.AssignEpoch = cg.Epoch
	var targets map[string]parts
	if cg.Assignor == "range" {
		targets = assignRange(subs, topics)
	} else {
		prev := map[string]parts{}
		for id, m := range cg.Members {
			prev[id] = m.Target
		}
		targets = assignUniform(subs, topics, prev)
	}
	for id, m := range cg.Members {
		m.Target = targets[id]
		if m.Target == nil {
			m.Target = parts{}
		}
	}
}

// reconcileLocked moves m toward its target (owned: the partitions the
// member reports owning, nil when it did not say). It reports whether the
// member's assignment or epoch changed.
func (g *group) reconcileLocked(m *consumerMember, owned parts) bool {
	cg := g.cons
	oldEpoch, oldAssigned, oldPending := m.Epoch, m.Assigned.clone(), m.Pending.clone()
	if owned != nil {
		// Revocations the member confirmed by no longer owning them.
		m.Pending.clone().each(func(t string, n int32) {
			if !owned.has(t, n) {
				m.Pending.remove(t, n)
				g.freeLocked(t, n, m.ID)
				delete(m.AssignedAt, assignKey(t, n))
			}
		})
	}
	// Partitions it must give up: out of its target.
	m.Assigned.clone().each(func(t string, n int32) {
		if !m.Target.has(t, n) {
			m.Assigned.remove(t, n)
			m.Pending.add(t, n)
		}
	})
	if m.Pending.count() > 0 {
		m.State = cmUnrevoked
		g.armRevokeLocked(m)
	} else {
		g.c.stopTimer(m.revokeTimer)
		m.revokeTimer = nil
		// New partitions, those nobody else owns.
		blocked := false
		m.Target.each(func(t string, n int32) {
			if m.Assigned.has(t, n) {
				return
			}
			tp := metadata.TP{Topic: t, Partition: n}
			if o, ok := cg.owner[tp]; ok && o != m.ID {
				blocked = true
				return
			}
			m.Assigned.add(t, n)
			cg.owner[tp] = m.ID
			if m.AssignedAt == nil {
				m.AssignedAt = map[string]int32{}
			}
			m.AssignedAt[assignKey(t, n)] = cg.AssignEpoch
		})
		if m.Epoch != cg.AssignEpoch {
			m.PrevEpoch, m.Epoch = m.Epoch, cg.AssignEpoch
		}
		m.State = cmStable
		if blocked {
			m.State = cmUnreleased
		}
	}
	return m.Epoch != oldEpoch || !partsEqual(m.Assigned, oldAssigned) || !partsEqual(m.Pending, oldPending)
}

func partsEqual(a, b parts) bool {
	if len(a) != len(b) {
		return false
	}
	for t, ps := range a {
		if !slices.Equal(ps, b[t]) {
			return false
		}
	}
	return true
}

// freeLocked drops member id's ownership of a partition.
func (g *group) freeLocked(t string, n int32, id string) {
	tp := metadata.TP{Topic: t, Partition: n}
	if g.cons.owner[tp] == id {
		delete(g.cons.owner, tp)
	}
}

// removeConsumerMemberLocked removes m and frees its partitions.
func (g *group) removeConsumerMemberLocked(m *consumerMember) {
	cg := g.cons
	m.stopTimers(g.c)
	delete(cg.Members, m.ID)
	g.c.m.members.Dec()
	if m.InstanceID != nil && cg.Static[*m.InstanceID] == m.ID {
		delete(cg.Static, *m.InstanceID)
	}
	cg.rebuildOwners()
	cg.Epoch++
}

// touchConsumerLocked extends m's session.
func (g *group) touchConsumerLocked(m *consumerMember) {
	if m.SessionMs <= 0 {
		m.SessionMs = 45000
	}
	m.deadline = time.Now().Add(time.Duration(m.SessionMs) * time.Millisecond)
	if m.timer == nil {
		g.armConsumerSessionLocked(m, time.Duration(m.SessionMs)*time.Millisecond)
	}
}

func (g *group) armConsumerSessionLocked(m *consumerMember, d time.Duration) {
	m.timer = g.c.afterFunc(g, d, func() {
		m.timer = nil
		if g.cons == nil || g.cons.Members[m.ID] != m {
			return
		}
		if now := time.Now(); now.Before(m.deadline) {
			g.armConsumerSessionLocked(m, m.deadline.Sub(now))
			return
		}
		g.c.log.Info("group: consumer member session expired", "group", g.name, "member", m.ID)
		g.expireConsumerLocked(m)
	})
}

// armRevokeLocked bounds m's revocation by its rebalance timeout: a member
// that keeps partitions it must give up longer is removed.
func (g *group) armRevokeLocked(m *consumerMember) {
	if m.revokeTimer != nil {
		return
	}
	d := time.Duration(m.RebalanceMs) * time.Millisecond
	if d <= 0 {
		d = 45 * time.Second
	}
	m.revokeTimer = g.c.afterFunc(g, d, func() {
		m.revokeTimer = nil
		if g.cons == nil || g.cons.Members[m.ID] != m || m.Pending.count() == 0 {
			return
		}
		g.c.log.Info("group: consumer member did not revoke in time", "group", g.name, "member", m.ID)
		g.expireConsumerLocked(m)
	})
}

func (g *group) expireConsumerLocked(m *consumerMember) {
	before, _ := json.Marshal(g.cons)
	g.removeConsumerMemberLocked(m)
	g.assignConsumerLocked()
	g.storeIfChangedLocked(before)
}

// assignRange deals each topic's partitions to its subscribers, in member
// id order, in contiguous ranges.
func assignRange(subs map[string][]string, topics map[string]int32) map[string]parts {
	out := map[string]parts{}
	by := map[string][]string{}
	for id, ts := range subs {
		out[id] = parts{}
		for _, t := range ts {
			by[t] = append(by[t], id)
		}
	}
	for t, ids := range by {
		sort.Strings(ids)
		n := int(topics[t])
		per, extra := n/len(ids), n%len(ids)
		p := 0
		for i, id := range ids {
			k := per
			if i < extra {
				k++
			}
			for j := 0; j < k; j++ {
				out[id].add(t, int32(p))
				p++
			}
		}
	}
	return out
}

// assignUniform spreads partitions evenly over the members subscribed to
// them, keeping each partition where it was when that stays balanced.
func assignUniform(subs map[string][]string, topics map[string]int32, prev map[string]parts) map[string]parts {
	out := map[string]parts{}
	ids := sortedKeys(subs)
	eligible := func(id, t string) bool { return slices.Contains(subs[id], t) }
	total := 0
	for _, n := range topics {
		total += int(n)
	}
	quota := 0
	if len(ids) > 0 {
		quota = (total + len(ids) - 1) / len(ids)
	}
	taken := map[metadata.TP]bool{}
	for _, id := range ids {
		out[id] = parts{}
		prev[id].each(func(t string, n int32) {
			tp := metadata.TP{Topic: t, Partition: n}
			if n < topics[t] && eligible(id, t) && !taken[tp] && out[id].count() < quota {
				out[id].add(t, n)
				taken[tp] = true
			}
		})
	}
	for _, t := range sortedKeys(topics) {
		for n := int32(0); n < topics[t]; n++ {
			tp := metadata.TP{Topic: t, Partition: n}
			if taken[tp] {
				continue
			}
			best := ""
			for _, id := range ids {
				if eligible(id, t) && (best == "" || out[id].count() < out[best].count()) {
					best = id
				}
			}
			if best != "" {
				out[best].add(t, n)
				taken[tp] = true
			}
		}
	}
	// Even out: move partitions from the fullest to the emptiest member
	// that may take them, while that narrows the gap.
	for range total {
		moved := false
		for _, from := range ids {
			for _, to := range ids {
				if out[from].count() <= out[to].count()+1 {
					continue
				}
				out[from].clone().each(func(t string, n int32) {
					if moved || !eligible(to, t) {
						return
					}
					out[from].remove(t, n)
					out[to].add(t, n)
					moved = true
				})
				if moved {
					break
				}
			}
			if moved {
				break
			}
		}
		if !moved {
			break
		}
	}
	return out
}

// ConsumerGroupDescribe handles a ConsumerGroupDescribe request.
func (c *Coordinator) ConsumerGroupDescribe(req *kmsg.ConsumerGroupDescribeRequest) *kmsg.ConsumerGroupDescribeResponse {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	for _, name := range req.Groups {
		sg := kmsg.NewConsumerGroupDescribeResponseGroup()
		sg.Group = name
		sg.AuthorizedOperations = -2147483648
		g, err := c.lookup(name, true)
		if err != nil {
			sg.ErrorCode = kerr.NotCoordinator.Code
			resp.Groups = append(resp.Groups, sg)
			continue
		}
		g.mu.Lock()
		code := int16(0)
		if g.kind != kindConsumer && (g.kind != "" || g.cons == nil) {
			if g.kind == "" {
				code = g.loadConsumerLocked()
			}
			if g.kind != kindConsumer && code == 0 {
				code = kerr.GroupIDNotFound.Code
			}
		} else {
			code = g.loadConsumerLocked()
		}
		if code != 0 {
			sg.ErrorCode = code
		} else {
			cg := g.cons
			sg.State = g.consumerStateLocked()
			sg.Epoch, sg.AssignmentEpoch, sg.AssignorName = cg.Epoch, cg.AssignEpoch, cg.Assignor
			for _, id := range sortedKeys(cg.Members) {
				m := cg.Members[id]
				sm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
				sm.MemberID, sm.InstanceID, sm.RackID, sm.MemberEpoch = m.ID, m.InstanceID, m.RackID, m.Epoch
				sm.ClientID, sm.ClientHost, sm.SubscribedTopics = m.ClientID, m.Host, m.Topics
				if m.Regex != "" {
					sm.SubscribedTopicRegex = kmsg.StringPtr(m.Regex)
				}
				sm.MemberType = 1
				if m.Classic {
					sm.MemberType = 0
				}
				sm.Assignment = c.wireAssignment(m.Assigned)
				sm.TargetAssignment = c.wireAssignment(m.Target)
				sg.Members = append(sg.Members, sm)
			}
		}
		g.maybeForgetLocked()
		g.mu.Unlock()
		resp.Groups = append(resp.Groups, sg)
	}
	return resp
}

func (c *Coordinator) wireAssignment(p parts) kmsg.Assignment {
	var a kmsg.Assignment
	for _, t := range sortedKeys(p) {
		if tt, ok := c.store.Topic(t); ok {
			at := kmsg.NewAssignmentTopicPartition()
			at.TopicID, at.Topic, at.Partitions = tt.ID, t, slices.Clone(p[t])
			a.TopicPartitions = append(a.TopicPartitions, at)
		}
	}
	return a
}

// consumerStateLocked is the group's state as Kafka names it for consumer
// groups: Empty, Assigning (target behind the group epoch), Reconciling
// (a member not at the target yet) or Stable.
func (g *group) consumerStateLocked() string {
	cg := g.cons
	if len(cg.Members) == 0 {
		return "Empty"
	}
	if cg.AssignEpoch != cg.Epoch {
		return "Assigning"
	}
	for _, m := range cg.Members {
		if m.Epoch != cg.AssignEpoch || m.State != cmStable {
			return "Reconciling"
		}
	}
	return "Stable"
}

func assignKey(t string, n int32) string { return t + "/" + strconv.Itoa(int(n)) }

// commitEpochOK decides a new-protocol member's commit at epoch, as Kafka
// does since KIP-1251: the current epoch always; an older one only for
// partitions the member still owns and was given at or before that epoch
// (a member that committed before it heard of a newer epoch, e.g. while
// leaving, must not be refused for partitions it rightly consumed).
func (m *consumerMember) commitEpochOK(epoch int32, ps []commitPart) bool {
	if epoch == m.Epoch {
		return true
	}
	if epoch > m.Epoch || epoch < 0 {
		return false
	}
	for _, p := range ps {
		if !m.Assigned.has(p.topic, p.partition) && !m.Pending.has(p.topic, p.partition) {
			return false
		}
		at, ok := m.AssignedAt[assignKey(p.topic, p.partition)]
		if !ok || at > epoch {
			return false
		}
	}
	return true
}

// commitPart is one partition of an offset commit.
type commitPart struct {
	topic     string
	partition int32
}

// consumerCommitCheckLocked checks a commit (OffsetCommit or
// TxnOffsetCommit) by a member of a KIP-848 group: the member must exist;
// a classic member's generation must be its epoch (ILLEGAL_GENERATION), a
// new-protocol member's epoch is checked as KIP-1251 says
// (STALE_MEMBER_EPOCH).
func (g *group) consumerCommitCheckLocked(memberID string, epoch int32, ps []commitPart) int16 {
	m := g.cons.Members[memberID]
	switch {
	case m == nil || m.Left:
		return kerr.UnknownMemberID.Code
	case m.Classic && epoch != m.Epoch:
		return kerr.IllegalGeneration.Code
	case !m.Classic && !m.commitEpochOK(epoch, ps):
		return kerr.StaleMemberEpoch.Code
	}
	return 0
}
