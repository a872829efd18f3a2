package group

// Classic-protocol members of KIP-848 consumer groups, as Kafka 4 serves
// them: a JoinGroup (protocol type "consumer") to a consumer group is
// answered at once, the member being no leader; its generation is its
// member epoch and its SyncGroup answer is its current assignment, computed
// by the coordinator. Its JoinGroup reports what it owns (cooperative
// members list their owned partitions, eager ones own nothing once they
// rejoin), which confirms revocations. While the member is not at the
// group's target (it must revoke, or partitions it is to get are still
// owned by others), its Heartbeat answers REBALANCE_IN_PROGRESS, so it
// joins again.
//
// A classic group whose members all use the consumer protocol type is
// upgraded to a consumer group when a ConsumerGroupHeartbeat comes while it
// is Stable: its members become classic members of the consumer group, with
// the assignments they hold.

import (
	"encoding/json"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// decodeSubscription reads a classic member's topics and owned partitions
// from its first consumer protocol's metadata.
func decodeSubscription(protocols []kmsg.JoinGroupRequestProtocol) (topics []string, owned parts, ok bool) {
	owned = parts{}
	for _, p := range protocols {
		var md kmsg.ConsumerMemberMetadata
		if err := md.ReadFrom(p.Metadata); err != nil {
			continue
		}
		for _, op := range md.OwnedPartitions {
			for _, n := range op.Partitions {
				owned.add(op.Topic, n)
			}
		}
		return md.Topics, owned, true
	}
	return nil, nil, false
}

// upgradeClassicLocked turns a Stable classic group of consumer-protocol
// members into a consumer group whose members are classic members.
func (g *group) upgradeClassicLocked() int16 {
	if g.protocolType != "consumer" {
		return kerr.GroupIDNotFound.Code
	}
	if g.state != Stable {
		return kerr.RebalanceInProgress.Code
	}
	cg := newConsumerGroup()
	cg.Epoch, cg.AssignEpoch = g.generation, g.generation
	for _, m := range g.members {
		topics, _, ok := decodeSubscription([]kmsg.JoinGroupRequestProtocol{{Name: g.protocol, Metadata: m.metadataFor(g.protocol)}})
		if !ok {
			return kerr.InconsistentGroupProtocol.Code
		}
		cm := &consumerMember{
			ID: m.id, InstanceID: m.instanceID, ClientID: m.clientID, Host: m.clientHost,
			Topics: topics, Epoch: g.generation, PrevEpoch: g.generation, State: cmStable,
			Assigned: parts{}, Pending: parts{}, Target: parts{},
			RebalanceMs: m.rebalanceTimeout.Milliseconds(), SessionMs: m.sessionTimeout.Milliseconds(),
			Classic: true, Protocols: m.protocols,
		}
		var a kmsg.ConsumerMemberAssignment
		if err := a.ReadFrom(m.assignment); err == nil {
			for _, t := range a.Topics {
				for _, n := range t.Partitions {
					cm.Assigned.add(t.Topic, n)
					cm.Target.add(t.Topic, n)
				}
			}
		}
		cg.Members[cm.ID] = cm
		if cm.InstanceID != nil {
			cg.Static[*cm.InstanceID] = cm.ID
		}
	}
	for _, m := range g.members {
		g.deleteMemberLocked(m)
	}
	g.stopTimersLocked()
	g.state, g.protocolType, g.protocol, g.leader = Empty, "", "", ""
	cg.rebuildOwners()
	cg.loadedVersion = g.c.ownershipVersion()
	g.cons, g.cmembers, g.kind = cg, cg.Members, kindConsumer
	g.c.m.members.Add(float64(len(cg.Members)))
	for _, m := range cg.Members {
		g.touchConsumerLocked(m)
	}
	g.c.log.Info("group: classic group upgraded to a consumer group", "group", g.name, "members", len(cg.Members))
	return g.storeConsumerLocked()
}

// isConsumerGroupLocked reports whether classic requests to g go to its
// consumer-group state (loading it when stored and this node has none).
func (g *group) isConsumerGroupLocked() bool {
	if g.kind == kindConsumer {
		return g.loadConsumerLocked() == 0
	}
	return false
}

// classicJoinLocked answers a JoinGroup to a consumer group.
func (g *group) classicJoinLocked(cl Client, req *kmsg.JoinGroupRequest, session, rebalance time.Duration) *kmsg.JoinGroupResponse {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.MemberID = req.MemberID
	if req.ProtocolType != "consumer" || len(req.Protocols) == 0 {
		resp.ErrorCode = kerr.InconsistentGroupProtocol.Code
		return resp
	}
	topics, owned, ok := decodeSubscription(req.Protocols)
	if !ok {
		resp.ErrorCode = kerr.InconsistentGroupProtocol.Code
		return resp
	}
	cg := g.cons
	before, _ := json.Marshal(cg)
	id := req.MemberID
	m := cg.Members[id]
	if req.InstanceID != nil {
		if old, ok := cg.Static[*req.InstanceID]; ok && old != id {
			if om := cg.Members[old]; om != nil {
				if id != "" && !om.Left {
					resp.ErrorCode = kerr.FencedInstanceID.Code
					return resp
				}
				// A static member's restart takes its place.
				om.stopTimers(g.c)
				delete(cg.Members, old)
				g.c.m.members.Dec()
				if id == "" {
					id = newMemberID(cl.ID, req.InstanceID)
				}
				om.ID = id
				m = om
				cg.Members[id] = m
				g.c.m.members.Inc()
			}
		}
	}
	if m == nil {
		if id != "" && req.InstanceID == nil {
			resp.ErrorCode = kerr.UnknownMemberID.Code
			return resp
		}
		if id == "" {
			id = newMemberID(cl.ID, req.InstanceID)
		}
		m = &consumerMember{ID: id, Assigned: parts{}, Pending: parts{}, Target: parts{}, State: cmStable}
		cg.Members[id] = m
		g.c.m.members.Inc()
		cg.Epoch++
	}
	g.cmembers = cg.Members
	if m.Classic && !m.Left {
		// What it no longer owns, it released.
		m.Assigned.clone().each(func(t string, n int32) {
			if !owned.has(t, n) {
				m.Assigned.remove(t, n)
				g.freeLocked(t, n, m.ID)
			}
		})
	}
	m.Classic, m.Left = true, false
	m.InstanceID, m.ClientID, m.Host = cloneString(req.InstanceID), cl.ID, cl.Host
	m.Protocols = req.Protocols
	m.SessionMs, m.RebalanceMs = session.Milliseconds(), rebalance.Milliseconds()
	if req.InstanceID != nil {
		cg.Static[*req.InstanceID] = id
	}
	sortedTopics := slices.Clone(topics)
	sort.Strings(sortedTopics)
	if !slices.Equal(sortedTopics, m.Topics) {
		m.Topics = sortedTopics
		cg.Epoch++
	}
	cg.rebuildOwners()
	g.touchConsumerLocked(m)
	g.assignConsumerLocked()
	g.reconcileLocked(m, owned)
	if code := g.storeIfChangedLocked(before); code != 0 {
		resp.ErrorCode = code
		return resp
	}
	resp.MemberID = m.ID
	resp.Generation = m.Epoch
	resp.ProtocolType = kmsg.StringPtr("consumer")
	resp.Protocol = kmsg.StringPtr(req.Protocols[0].Name)
	resp.LeaderID = "" // the coordinator assigns: no member is leader
	return resp
}

// classicMember validates a classic member's id and generation.
func (g *group) classicMemberLocked(id string, generation int32) (*consumerMember, int16) {
	m := g.cons.Members[id]
	if m == nil || !m.Classic || m.Left {
		return nil, kerr.UnknownMemberID.Code
	}
	if generation != m.Epoch {
		return nil, kerr.IllegalGeneration.Code
	}
	return m, 0
}

// classicSyncLocked answers a SyncGroup of a classic member of a consumer
// group with its assignment.
func (g *group) classicSyncLocked(req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	m, code := g.classicMemberLocked(req.MemberID, req.Generation)
	if code != 0 {
		resp.ErrorCode = code
		return resp
	}
	g.touchConsumerLocked(m)
	var a kmsg.ConsumerMemberAssignment
	for _, t := range sortedKeys(m.Assigned) {
		a.Topics = append(a.Topics, kmsg.ConsumerMemberAssignmentTopic{Topic: t, Partitions: append([]int32(nil), m.Assigned[t]...)})
	}
	resp.MemberAssignment = a.AppendTo(nil)
	resp.ProtocolType = kmsg.StringPtr("consumer")
	if len(m.Protocols) > 0 {
		resp.Protocol = kmsg.StringPtr(m.Protocols[0].Name)
	}
	return resp
}

// classicHeartbeatLocked answers a Heartbeat of a classic member of a
// consumer group.
func (g *group) classicHeartbeatLocked(req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	m, code := g.classicMemberLocked(req.MemberID, req.Generation)
	if code != 0 {
		resp.ErrorCode = code
		return resp
	}
	g.touchConsumerLocked(m)
	before, _ := json.Marshal(g.cons)
	g.assignConsumerLocked()
	if code := g.storeIfChangedLocked(before); code != 0 {
		resp.ErrorCode = code
		return resp
	}
	if m.Epoch != g.cons.AssignEpoch || m.State != cmStable || m.Pending.count() > 0 || !partsEqual(m.Assigned, m.Target) {
		resp.ErrorCode = kerr.RebalanceInProgress.Code
	}
	return resp
}

// classicLeaveLocked removes classic members of a consumer group.
func (g *group) classicLeaveLocked(id string, instance *string) int16 {
	cg := g.cons
	if id == "" && instance != nil {
		id = cg.Static[*instance]
	}
	m := cg.Members[id]
	if m == nil {
		return kerr.UnknownMemberID.Code
	}
	before, _ := json.Marshal(cg)
	g.removeConsumerMemberLocked(m)
	g.assignConsumerLocked()
	return g.storeIfChangedLocked(before)
}

// joinOtherKindLocked handles a JoinGroup to a group that is not (or may
// not be) a classic group: a consumer group takes the member as a classic
// member; a share group with members refuses it. done is false when the
// classic join should proceed.
func (g *group) joinOtherKindLocked(cl Client, req *kmsg.JoinGroupRequest, session, rebalance time.Duration) (*kmsg.JoinGroupResponse, bool) {
	switch g.kind {
	case kindShare:
		if len(g.smembers) > 0 {
			resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
			resp.MemberID, resp.ErrorCode = req.MemberID, kerr.InconsistentGroupProtocol.Code
			return resp, true
		}
	case "", kindConsumer:
		if code := g.loadConsumerLocked(); code != 0 {
			resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
			resp.MemberID, resp.ErrorCode = req.MemberID, code
			return resp, true
		}
		if g.kind == kindConsumer {
			return g.classicJoinLocked(cl, req, session, rebalance), true
		}
	}
	g.kind = kindClassic
	return nil, false
}
