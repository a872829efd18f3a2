package group

import (
	"context"
	"slices"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Coordinator key types of FindCoordinator (v1+).
const (
	keyTypeGroup       int8 = 0
	keyTypeTransaction int8 = 1
)

// FindCoordinator handles a FindCoordinator request: each group's owner
// (Config.Owner; this node when there is none). v0-v3 ask for one key, v4+
// for a batch.
// Transactional ids (and any other key type) get INVALID_REQUEST: Strata
// has no transaction coordinator, and saying so fails the client at once
// instead of letting it retry until its timeout.
func (c *Coordinator) FindCoordinator(req *kmsg.FindCoordinatorRequest) *kmsg.FindCoordinatorResponse {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keyType := req.CoordinatorType
	if req.Version == 0 {
		keyType = keyTypeGroup
	}
	var (
		code int16
		msg  *string
	)
	switch keyType {
	case keyTypeGroup:
	case keyTypeTransaction:
		code, msg = kerr.InvalidRequest.Code, kmsg.StringPtr("strata does not support transactions")
	default:
		code, msg = kerr.InvalidRequest.Code, kmsg.StringPtr("unsupported coordinator key type")
	}
	c.mu.Lock()
	if c.closed && code == 0 {
		code = kerr.CoordinatorNotAvailable.Code
	}
	c.mu.Unlock()
	answer := func(key string) (int32, string, int32) {
		if code != 0 {
			return -1, "", -1
		}
		return c.owner(key)
	}
	if req.Version < 4 {
		resp.ErrorCode, resp.ErrorMessage = code, msg
		resp.NodeID, resp.Host, resp.Port = answer(req.CoordinatorKey)
		return resp
	}
	for _, key := range req.CoordinatorKeys {
		rc := kmsg.NewFindCoordinatorResponseCoordinator()
		rc.Key = key
		rc.ErrorCode, rc.ErrorMessage = code, msg
		rc.NodeID, rc.Host, rc.Port = answer(key)
		resp.Coordinators = append(resp.Coordinators, rc)
	}
	return resp
}

// groupOps is the authorized-operations bit field Strata reports for a
// group (it has no ACLs): READ (3), DELETE (6) and DESCRIBE (8).
const groupOps int32 = 1<<3 | 1<<6 | 1<<8

// DescribeGroups handles a DescribeGroups request. A stable group's
// members come with their metadata and assignment; other states list the
// members only, as Kafka does. A group that exists only through committed
// offsets (after a restart) is Empty; an unknown group is Dead, and from v6
// also GROUP_ID_NOT_FOUND.
func (c *Coordinator) DescribeGroups(ctx context.Context, req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, name := range req.Groups {
		sg := kmsg.NewDescribeGroupsResponseGroup()
		sg.Group = name
		if req.IncludeAuthorizedOperations {
			sg.AuthorizedOperations = groupOps
		}
		c.describe(ctx, name, req.Version, &sg)
		resp.Groups = append(resp.Groups, sg)
	}
	return resp
}

func (c *Coordinator) describe(ctx context.Context, name string, version int16, sg *kmsg.DescribeGroupsResponseGroup) {
	notFound := func() {
		sg.State = Dead.String()
		if version >= 6 {
			sg.ErrorCode = kerr.GroupIDNotFound.Code
			sg.ErrorMessage = kmsg.StringPtr("group " + name + " not found")
		}
	}
	if name == "" {
		notFound()
		return
	}
	g, code := c.lockOffsets(ctx, name)
	if code != 0 {
		sg.ErrorCode = code
		return
	}
	defer g.unlockOffsets()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.kind == "" || g.kind == kindConsumer {
		g.loadConsumerLocked()
	}
	if g.kind == kindShare || !g.existsLocked() {
		notFound()
		return
	}
	if g.kind == kindConsumer && g.cons != nil {
		// A KIP-848 group, shown as Kafka 4 shows one to classic
		// tools: its members with their subscriptions and assignments.
		cg := g.cons
		sg.State, sg.ProtocolType, sg.Protocol = g.consumerStateLocked(), "consumer", cg.Assignor
		for _, id := range sortedKeys(cg.Members) {
			m := cg.Members[id]
			dm := kmsg.NewDescribeGroupsResponseGroupMember()
			dm.MemberID, dm.InstanceID, dm.ClientID, dm.ClientHost = m.ID, m.InstanceID, m.ClientID, m.Host
			md := kmsg.ConsumerMemberMetadata{Version: 0, Topics: m.Topics}
			dm.ProtocolMetadata = md.AppendTo(nil)
			var a kmsg.ConsumerMemberAssignment
			for _, t := range sortedKeys(m.Assigned) {
				a.Topics = append(a.Topics, kmsg.ConsumerMemberAssignmentTopic{Topic: t, Partitions: slices.Clone(m.Assigned[t])})
			}
			dm.MemberAssignment = a.AppendTo(nil)
			sg.Members = append(sg.Members, dm)
		}
		return
	}
	sg.State = g.state.String()
	sg.ProtocolType = g.protocolType
	stable := g.state == Stable
	if stable {
		sg.Protocol = g.protocol
	}
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		m := g.members[id]
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID = m.id
		dm.InstanceID = m.instanceID
		dm.ClientID = m.clientID
		dm.ClientHost = m.clientHost
		if stable {
			dm.ProtocolMetadata = m.metadataFor(g.protocol)
			dm.MemberAssignment = m.assignment
		}
		sg.Members = append(sg.Members, dm)
	}
}

// ListGroups handles a ListGroups request: groups held in memory in their
// state, and groups known only through committed offsets as Empty. v4
// filters by state and v5 by type (every Strata group is "classic"), both
// case-insensitively as Kafka does.
func (c *Coordinator) ListGroups(ctx context.Context, req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	type entry struct{ state, protocolType, kind string }
	found := make(map[string]entry)
	for _, g := range c.snapshot() {
		g.mu.Lock()
		if !g.dead && !g.stopped {
			switch {
			case g.kind == kindShare:
				st := "Empty"
				if len(g.smembers) > 0 {
					st = "Stable"
				}
				found[g.name] = entry{st, "share", kindShare}
			case g.kind == kindConsumer && g.cons != nil:
				found[g.name] = entry{g.consumerStateLocked(), "consumer", kindConsumer}
			default:
				found[g.name] = entry{g.state.String(), g.protocolType, kindClassic}
			}
		}
		g.mu.Unlock()
	}
	stored, err := c.store.ListStoredGroups(ctx)
	if err != nil {
		c.log.Warn("group: listing stored groups", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp
	}
	for _, sg := range stored {
		if _, ok := found[sg.Name]; !ok && c.owns(sg.Name) {
			pt := ""
			if sg.Kind != kindClassic {
				pt = sg.Kind
			}
			found[sg.Name] = entry{Empty.String(), pt, sg.Kind}
		}
	}
	matches := func(filter []string, v string) bool {
		if len(filter) == 0 {
			return true
		}
		for _, f := range filter {
			if strings.EqualFold(f, v) {
				return true
			}
		}
		return false
	}
	names := make([]string, 0, len(found))
	for name := range found {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		e := found[name]
		if req.Version >= 4 && !matches(req.StatesFilter, e.state) {
			continue
		}
		if req.Version >= 5 && !matches(req.TypesFilter, e.kind) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group = name
		lg.ProtocolType = e.protocolType
		lg.GroupState = e.state
		lg.GroupType = e.kind
		resp.Groups = append(resp.Groups, lg)
	}
	return resp
}

// DeleteGroups handles a DeleteGroups request: an empty group is removed
// with its committed offsets; a group with members is NON_EMPTY_GROUP, an
// unknown one GROUP_ID_NOT_FOUND.
func (c *Coordinator) DeleteGroups(ctx context.Context, req *kmsg.DeleteGroupsRequest) *kmsg.DeleteGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, name := range req.Groups {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group = name
		rg.ErrorCode = c.deleteGroup(ctx, name)
		resp.Groups = append(resp.Groups, rg)
	}
	return resp
}

func (c *Coordinator) deleteGroup(ctx context.Context, name string) int16 {
	if name == "" {
		return kerr.InvalidGroupID.Code
	}
	g, code := c.lockOffsets(ctx, name)
	if code != 0 {
		return code
	}
	defer g.unlockOffsets()
	g.mu.Lock()
	if g.kind == "" || g.kind == kindConsumer {
		g.loadConsumerLocked()
	}
	switch {
	case len(g.members) > 0 || len(g.smembers) > 0 || len(g.cmembers) > 0:
		g.mu.Unlock()
		return kerr.NonEmptyGroup.Code
	case !g.existsLocked():
		// Nothing in memory: a share or consumer group's state, or its
		// configs, may still be stored.
		g.mu.Unlock()
		stored, err := c.store.GroupStored(ctx, name)
		if err != nil {
			return kerr.CoordinatorNotAvailable.Code
		}
		if !stored {
			return kerr.GroupIDNotFound.Code
		}
		g.mu.Lock()
		if len(g.members) > 0 || len(g.smembers) > 0 || len(g.cmembers) > 0 {
			g.mu.Unlock()
			return kerr.NonEmptyGroup.Code // a member joined meanwhile
		}
	}
	// Dead first, so nothing commits to the group while its offsets go;
	// a later commit creates a new group.
	g.dieLocked()
	g.mu.Unlock()
	if err := c.store.DeleteGroupOffsets(ctx, name); err != nil {
		c.log.Warn("group: deleting group offsets", "group", name, "err", err)
		return kerr.CoordinatorNotAvailable.Code
	}
	c.log.Info("group: deleted", "group", name)
	return 0
}
