package group

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Group kinds. A group id names one kind at a time; a request of another
// kind is refused while the group has members.
const (
	kindClassic  = "classic"
	kindConsumer = "consumer"
	kindShare    = "share"
)

// shareMember is a member of a share group (KIP-932).
type shareMember struct {
	id       string
	clientID string
	host     string
	rack     *string
	topics   []string // sorted
	epoch    int32
	assigned map[string][]int32
	session  time.Duration
	deadline time.Time
	timer    *time.Timer
}

// groupDurations reads a group's heartbeat interval and session timeout
// configs (prefix "share." or "consumer."), falling back to the defaults.
func (c *Coordinator) groupDurations(name, prefix string) (interval, session time.Duration) {
	interval, session = c.cfg.ConsumerHeartbeatInterval, c.cfg.ConsumerSessionTimeout
	if interval <= 0 {
		interval = 5 * time.Second
	}
	if session <= 0 {
		session = 45 * time.Second
	}
	if c.cfg.GroupConfig == nil {
		return interval, session
	}
	cfg := c.cfg.GroupConfig(name)
	if v, err := strconv.ParseInt(cfg[prefix+"heartbeat.interval.ms"], 10, 64); err == nil && v > 0 {
		interval = time.Duration(v) * time.Millisecond
	}
	if v, err := strconv.ParseInt(cfg[prefix+"session.timeout.ms"], 10, 64); err == nil && v > 0 {
		session = time.Duration(v) * time.Millisecond
	}
	return interval, session
}

// ShareGroupHeartbeat handles a ShareGroupHeartbeat: epoch 0 joins (the
// client names its member id, KIP-1082), -1 leaves, any other epoch must be
// the member's. Every subscribed partition is assigned to at least one
// member and members share partitions when there are more members than
// partitions (the simple assignor); assignments change at once, as share
// groups have no exclusive ownership to revoke. Membership is held in
// memory: after the coordinator moves, members rejoin (UNKNOWN_MEMBER_ID)
// and the records' state, kept by the partitions' leaders, is untouched.
func (c *Coordinator) ShareGroupHeartbeat(cl Client, req *kmsg.ShareGroupHeartbeatRequest) *kmsg.ShareGroupHeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.ShareGroupHeartbeatResponse)
	fail := func(code int16, msg string) *kmsg.ShareGroupHeartbeatResponse {
		resp.ErrorCode = code
		if msg != "" {
			resp.ErrorMessage = kmsg.StringPtr(msg)
		}
		return resp
	}
	if req.GroupID == "" {
		return fail(kerr.InvalidGroupID.Code, "")
	}
	if req.MemberID == "" || len(req.MemberID) > 36 {
		return fail(kerr.InvalidRequest.Code, "the member id must be set by the client, at most 36 characters")
	}
	if req.MemberEpoch == 0 && req.SubscribedTopicNames == nil {
		return fail(kerr.InvalidRequest.Code, "SubscribedTopicNames must be set when joining")
	}
	interval, session := c.groupDurations(req.GroupID, "share.")
	resp.HeartbeatIntervalMillis = int32(interval / time.Millisecond)
	for range maxLookups {
		g, err := c.lookup(req.GroupID, req.MemberEpoch == 0)
		if err != nil {
			return fail(kerr.NotCoordinator.Code, "")
		}
		if g == nil {
			return fail(kerr.UnknownMemberID.Code, "")
		}
		code, retry := g.lockLive()
		if retry {
			continue
		}
		if code != 0 {
			return fail(code, "")
		}
		out := g.shareHeartbeatLocked(cl, req, resp, session)
		g.mu.Unlock()
		return out
	}
	return fail(kerr.CoordinatorNotAvailable.Code, "")
}

func (g *group) shareHeartbeatLocked(cl Client, req *kmsg.ShareGroupHeartbeatRequest, resp *kmsg.ShareGroupHeartbeatResponse, session time.Duration) *kmsg.ShareGroupHeartbeatResponse {
	if g.kind != kindShare {
		if len(g.members) > 0 || len(g.cmembers) > 0 || g.kind == kindConsumer {
			resp.ErrorCode = kerr.GroupIDNotFound.Code
			resp.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("group %q is not a share group", g.name))
			return resp
		}
		g.kind = kindShare
		if g.smembers == nil {
			g.smembers = map[string]*shareMember{}
		}
	}
	resp.MemberID = kmsg.StringPtr(req.MemberID)
	m := g.smembers[req.MemberID]
	switch req.MemberEpoch {
	case 0:
		if m == nil {
			m = &shareMember{id: req.MemberID}
			g.smembers[m.id] = m
			g.c.m.members.Inc()
			g.sepoch++
		}
		m.clientID, m.host, m.rack, m.session = cl.ID, cl.Host, req.RackID, session
		topics := slices.Clone(req.SubscribedTopicNames)
		sort.Strings(topics)
		if !slices.Equal(topics, m.topics) {
			m.topics = topics
			g.sepoch++
		}
		m.epoch = 0 // the assignment below is sent
	case -1:
		if m != nil {
			g.removeShareMemberLocked(m)
		}
		resp.MemberEpoch = -1
		return resp
	default:
		if m == nil {
			resp.ErrorCode = kerr.UnknownMemberID.Code
			return resp
		}
		if req.MemberEpoch != m.epoch {
			resp.ErrorCode = kerr.FencedMemberEpoch.Code
			return resp
		}
		if req.SubscribedTopicNames != nil {
			topics := slices.Clone(req.SubscribedTopicNames)
			sort.Strings(topics)
			if !slices.Equal(topics, m.topics) {
				m.topics = topics
				g.sepoch++
			}
		}
		m.session = session
	}
	m.deadline = time.Now().Add(m.session)
	if m.timer == nil {
		g.armShareSessionLocked(m, m.session)
	}
	if sig := g.shareSignatureLocked(); sig != g.ssig {
		g.ssig = sig
		g.sepoch++
	}
	if g.sassigned != g.sepoch {
		g.assignShareLocked()
	}
	if m.epoch != g.sepoch || req.SubscribedTopicNames != nil {
		m.epoch = g.sepoch
		a := &kmsg.ShareGroupHeartbeatResponseAssignment{}
		for _, t := range sortedKeys(m.assigned) {
			if tt, ok := g.c.store.Topic(t); ok {
				at := kmsg.NewShareGroupHeartbeatResponseAssignmentTopicPartition()
				at.TopicID = tt.ID
				at.Partitions = m.assigned[t]
				a.TopicPartitions = append(a.TopicPartitions, at)
			}
		}
		resp.Assignment = a
	}
	resp.MemberEpoch = m.epoch
	return resp
}

// shareSignatureLocked names the subscribed topics and their partition
// counts: when it changes (a topic created, deleted or grown), the group
// is assigned again.
func (g *group) shareSignatureLocked() string {
	seen := map[string]bool{}
	for _, m := range g.smembers {
		for _, t := range m.topics {
			seen[t] = true
		}
	}
	var b strings.Builder
	for _, t := range sortedKeys(seen) {
		n := int32(-1)
		if tt, ok := g.c.store.Topic(t); ok {
			n = tt.Partitions
		}
		fmt.Fprintf(&b, "%s:%d,", t, n)
	}
	return b.String()
}

// assignShareLocked is the simple assignor: per topic, its subscribers in
// member id order and its partitions are dealt out round robin over
// max(members, partitions) steps, so every partition has a member and
// every member a partition.
func (g *group) assignShareLocked() {
	g.sassigned = g.sepoch
	subs := map[string][]string{}
	for _, m := range g.smembers {
		m.assigned = map[string][]int32{}
		for _, t := range m.topics {
			subs[t] = append(subs[t], m.id)
		}
	}
	for t, ids := range subs {
		tt, ok := g.c.store.Topic(t)
		if !ok || tt.Partitions == 0 {
			continue
		}
		sort.Strings(ids)
		n := max(len(ids), int(tt.Partitions))
		for i := 0; i < n; i++ {
			m := g.smembers[ids[i%len(ids)]]
			p := int32(i % int(tt.Partitions))
			if !slices.Contains(m.assigned[t], p) {
				m.assigned[t] = append(m.assigned[t], p)
			}
		}
	}
	for _, m := range g.smembers {
		for t := range m.assigned {
			slices.Sort(m.assigned[t])
		}
	}
}

func (g *group) armShareSessionLocked(m *shareMember, d time.Duration) {
	m.timer = g.c.afterFunc(g, d, func() {
		m.timer = nil
		if g.smembers[m.id] != m {
			return
		}
		if now := time.Now(); now.Before(m.deadline) {
			g.armShareSessionLocked(m, m.deadline.Sub(now))
			return
		}
		g.c.log.Info("group: share member session expired", "group", g.name, "member", m.id)
		g.removeShareMemberLocked(m)
	})
}

func (g *group) removeShareMemberLocked(m *shareMember) {
	g.c.stopTimer(m.timer)
	m.timer = nil
	delete(g.smembers, m.id)
	g.c.m.members.Dec()
	g.sepoch++
}

// ShareGroupDescribe handles a ShareGroupDescribe request.
func (c *Coordinator) ShareGroupDescribe(req *kmsg.ShareGroupDescribeRequest) *kmsg.ShareGroupDescribeResponse {
	resp := req.ResponseKind().(*kmsg.ShareGroupDescribeResponse)
	for _, name := range req.GroupIDs {
		sg := kmsg.NewShareGroupDescribeResponseGroup()
		sg.GroupID = name
		sg.AuthorizedOperations = -2147483648
		g, err := c.lookup(name, false)
		switch {
		case err != nil:
			sg.ErrorCode = kerr.NotCoordinator.Code
		case g == nil:
			sg.ErrorCode = kerr.GroupIDNotFound.Code
		default:
			g.mu.Lock()
			if g.kind != kindShare || g.dead {
				sg.ErrorCode = kerr.GroupIDNotFound.Code
			} else {
				sg.GroupState = "Empty"
				if len(g.smembers) > 0 {
					sg.GroupState = "Stable"
				}
				if g.sassigned != g.sepoch {
					g.assignShareLocked()
				}
				sg.GroupEpoch, sg.AssignmentEpoch, sg.Assignor = g.sepoch, g.sassigned, "simple"
				for _, id := range sortedKeys(g.smembers) {
					m := g.smembers[id]
					sm := kmsg.NewShareGroupDescribeResponseGroupMember()
					sm.MemberID, sm.RackID, sm.MemberEpoch = m.id, m.rack, m.epoch
					sm.ClientID, sm.ClientHost, sm.SubscribedTopicNames = m.clientID, m.host, m.topics
					for _, t := range sortedKeys(m.assigned) {
						if tt, ok := c.store.Topic(t); ok {
							at := kmsg.NewShareGroupDescribeResponseGroupMemberAssignmentTopicPartition()
							at.TopicID, at.Topic, at.Partitions = tt.ID, t, m.assigned[t]
							sm.Assignment.TopicPartitions = append(sm.Assignment.TopicPartitions, at)
						}
					}
					sg.Members = append(sg.Members, sm)
				}
			}
			g.mu.Unlock()
		}
		resp.Groups = append(resp.Groups, sg)
	}
	return resp
}

// ShareMembers reports whether group is a share group with members now
// (AlterShareGroupOffsets is refused then).
func (c *Coordinator) ShareMembers(name string) (members int, coordinated bool) {
	g, err := c.lookup(name, false)
	if err != nil {
		return 0, false
	}
	if g == nil {
		return 0, true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.smembers) + len(g.members) + len(g.cmembers), true
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Owns reports whether this node coordinates the group now.
func (c *Coordinator) Owns(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.closed && c.owns(name)
}
