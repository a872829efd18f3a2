package group

import (
	"context"
	"maps"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
)

// lockOffsets returns the live group named name (created if need be) with
// its offset lock held and its offsets loaded from the store. The caller
// must call unlockOffsets. A non-zero code is NOT_COORDINATOR after Close,
// or COORDINATOR_NOT_AVAILABLE when the store failed (retriable: the client
// asks again).
func (c *Coordinator) lockOffsets(ctx context.Context, name string) (*group, int16) {
	return c.lockOffsetsFresh(ctx, name, false)
}

// lockOffsetsFresh is lockOffsets; fresh loads the offsets from the store
// whatever the cache holds.
func (c *Coordinator) lockOffsetsFresh(ctx context.Context, name string, fresh bool) (*group, int16) {
	if c.cfg.Serving != nil && !c.cfg.Serving() {
		return nil, kerr.NotCoordinator.Code
	}
	for range maxLookups {
		g, err := c.lookup(name, true)
		if err != nil {
			return nil, kerr.NotCoordinator.Code
		}
		g.offMu.Lock()
		code, retry := g.lockLive()
		if retry {
			g.offMu.Unlock()
			continue
		}
		if code != 0 {
			g.offMu.Unlock()
			return nil, code
		}
		g.offBusy = true
		// Offsets cached before the node set changed may be stale: the
		// group may have been coordinated elsewhere, and committed to,
		// since (and moved back here).
		ver := c.ownershipVersion()
		loaded := g.offsetsLoaded && g.offsetsVersion == ver && !g.txnOffsets && !fresh
		g.mu.Unlock()
		if !loaded {
			// Pending transactional offsets first: a transaction's end
			// writes the group's offsets in etcd, behind this cache, so a
			// group that has any is never served from the cache again.
			pending, err := c.store.PendingTxnOffsets(ctx, name)
			if err != nil {
				c.log.Warn("group: loading pending transactional offsets", "group", name, "err", err)
				g.unlockOffsets()
				return nil, kerr.CoordinatorNotAvailable.Code
			}
			offs, err := c.store.FetchOffsets(ctx, name)
			if err != nil {
				c.log.Warn("group: loading committed offsets", "group", name, "err", err)
				g.unlockOffsets()
				return nil, kerr.CoordinatorNotAvailable.Code
			}
			g.mu.Lock()
			g.offsets, g.offsetsLoaded, g.offsetsVersion = offs, true, ver
			if len(pending) > 0 {
				g.txnOffsets = true
			}
			g.mu.Unlock()
		}
		return g, 0
	}
	return nil, kerr.CoordinatorNotAvailable.Code
}

// unlockOffsets ends what lockOffsets started.
func (g *group) unlockOffsets() {
	g.mu.Lock()
	g.offBusy = false
	g.maybeForgetLocked()
	g.mu.Unlock()
	g.offMu.Unlock()
}

// validateCommitLocked decides whether a commit may be applied, as Kafka's
// classic groups do: a commit with a negative generation to an empty group
// is a "simple" commit of a client that manages partitions itself (kcat,
// sarama's and librdkafka's manual commits); anything naming a member must
// come from a current member of the current generation.
func (g *group) validateCommitLocked(req *kmsg.OffsetCommitRequest) int16 {
	if g.kind == "" || g.kind == kindConsumer {
		if code := g.loadConsumerLocked(); code != 0 {
			return code
		}
	}
	if g.kind == kindShare && len(g.smembers) > 0 {
		return kerr.GroupIDNotFound.Code
	}
	if g.kind == kindConsumer {
		// KIP-848: the generation is the member epoch.
		if req.Generation < 0 && req.MemberID == "" {
			if len(g.cons.Members) > 0 {
				return kerr.UnknownMemberID.Code
			}
			return 0
		}
		var ps []commitPart
		for _, t := range req.Topics {
			for _, p := range t.Partitions {
				ps = append(ps, commitPart{t.Topic, p.Partition})
			}
		}
		return g.consumerCommitCheckLocked(req.MemberID, req.Generation, ps)
	}
	if req.Generation < 0 && g.state == Empty {
		return 0
	}
	if req.Generation >= 0 || req.MemberID != "" || req.InstanceID != nil {
		if code := g.validateMemberLocked(req.MemberID, req.InstanceID, false); code != 0 {
			return code
		}
		if req.Generation != g.generation {
			return kerr.IllegalGeneration.Code
		}
		if g.generationEpoch != g.c.leaseEpoch() {
			// The generation began before this node lost its lease (it
			// was paused or cut off past the TTL): another coordinator
			// may have run the group and taken newer commits since. Its
			// members must rejoin before they commit again.
			return kerr.IllegalGeneration.Code
		}
	} else if g.state != Empty {
		// No member and no generation: only an empty group takes it.
		return kerr.UnknownMemberID.Code
	}
	if g.state == CompletingRebalance {
		// The member has its join answer but not yet its assignment:
		// it must not commit for partitions it may lose.
		return kerr.RebalanceInProgress.Code
	}
	return 0
}

// OffsetCommit handles an OffsetCommit request (v0-v9). Offsets are stored
// before the answer. Partitions of unknown topics get
// UNKNOWN_TOPIC_OR_PARTITION and over-long metadata
// OFFSET_METADATA_TOO_LARGE; the others are committed together. The v1
// per-partition timestamp and the v2-v4 retention time are accepted and
// ignored: committed offsets never expire (Kafka drops them 7 days after a
// group empties).
func (c *Coordinator) OffsetCommit(ctx context.Context, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	setAll := func(code int16) *kmsg.OffsetCommitResponse {
		n := 0
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				resp.Topics[i].Partitions[j].ErrorCode = code
				n++
			}
		}
		c.m.commits.WithLabelValues("rejected").Add(float64(n))
		return resp
	}
	if req.Version < 7 {
		req.InstanceID = nil
	}
	if req.Group == "" {
		return setAll(kerr.InvalidGroupID.Code)
	}
	g, code := c.lockOffsets(ctx, req.Group)
	if code != 0 {
		return setAll(code)
	}
	defer g.unlockOffsets()
	g.mu.Lock()
	code = g.validateCommitLocked(req)
	if m := g.members[req.MemberID]; code == 0 && m != nil {
		g.touchLocked(m) // a commit is a sign of life, as in Kafka
	}
	g.mu.Unlock()
	if code != 0 {
		return setAll(code)
	}

	now := time.Now().UTC().Truncate(time.Millisecond)
	commit := make(map[metadata.TP]metadata.CommittedOffset)
	var rejected int
	for i, t := range req.Topics {
		topic, known := c.store.Topic(t.Topic)
		for j, p := range t.Partitions {
			rp := &resp.Topics[i].Partitions[j]
			meta := ""
			if p.Metadata != nil {
				meta = *p.Metadata
			}
			switch {
			case !known || p.Partition < 0 || p.Partition >= topic.Partitions:
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case len(meta) > c.cfg.MaxMetadataBytes:
				rp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			default:
				commit[metadata.TP{Topic: t.Topic, Partition: p.Partition}] = metadata.CommittedOffset{
					Offset:      p.Offset,
					LeaderEpoch: p.LeaderEpoch, // -1 (the default) before v6
					Metadata:    meta,
					CommitTime:  now,
				}
				continue
			}
			rejected++
		}
	}
	c.m.commits.WithLabelValues("rejected").Add(float64(rejected))
	if len(commit) == 0 {
		return resp
	}
	// A commit that was read in full is applied even if its client goes
	// away meanwhile, as in Kafka: the client cannot tell whether it was,
	// and applying it keeps a consumer that commits on close from losing
	// its last commit. The Store bounds the write by its request timeout.
	if err := c.store.CommitOffsets(context.WithoutCancel(ctx), req.Group, commit); err != nil {
		c.log.Warn("group: storing committed offsets", "group", req.Group, "partitions", len(commit), "err", err)
		c.m.commits.WithLabelValues("failed").Add(float64(len(commit)))
		// The outcome is unknown (a timed-out write may still apply):
		// forget the cached offsets, so the next read asks etcd rather
		// than answer an older offset than the one etcd holds.
		g.mu.Lock()
		g.offsetsLoaded = false
		g.mu.Unlock()
		for i, t := range req.Topics {
			for j, p := range t.Partitions {
				if _, ok := commit[metadata.TP{Topic: t.Topic, Partition: p.Partition}]; ok {
					resp.Topics[i].Partitions[j].ErrorCode = kerr.CoordinatorNotAvailable.Code
				}
			}
		}
		return resp
	}
	c.m.commits.WithLabelValues("ok").Add(float64(len(commit)))
	g.mu.Lock()
	maps.Copy(g.offsets, commit)
	g.mu.Unlock()
	return resp
}

// fetchedTopic is one topic of an OffsetFetch answer, before it is put in
// the version's layout.
type fetchedTopic struct {
	topic string
	parts []fetchedPart
}

type fetchedPart struct {
	partition int32
	off       metadata.CommittedOffset
	found     bool
	unstable  bool // an open transaction holds an offset for it
}

// fetch returns the group's committed offsets of topics (every committed
// offset when all is set). Partitions without a commit are returned with
// found unset (offset -1 on the wire, no error, as Kafka answers).
func (c *Coordinator) fetch(ctx context.Context, name string, topics map[string][]int32, order []string, all, requireStable bool) (int16, []fetchedTopic) {
	if name == "" {
		// Nothing can be stored under the empty group id.
		return 0, requested(nil, topics, order)
	}
	// With RequireStable, the pending transactional offsets are read
	// first and the committed ones after them: a transaction ending in
	// between shows as its new offsets, never as old ones with nothing
	// pending.
	var pending map[int64][]metadata.TP
	if requireStable {
		var err error
		if pending, err = c.store.PendingTxnOffsets(ctx, name); err != nil {
			c.log.Warn("group: reading pending transactional offsets", "group", name, "err", err)
			return kerr.CoordinatorNotAvailable.Code, nil
		}
	}
	g, code := c.lockOffsetsFresh(ctx, name, requireStable)
	if code != 0 {
		return code, nil
	}
	defer g.unlockOffsets()
	var unstable map[metadata.TP]bool
	if requireStable {
		for _, tps := range pending {
			if unstable == nil {
				unstable = make(map[metadata.TP]bool)
			}
			for _, tp := range tps {
				unstable[tp] = true
			}
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !all {
		return 0, markUnstable(requested(g.offsets, topics, order), unstable)
	}
	byTopic := make(map[string][]int32)
	for tp := range g.offsets {
		byTopic[tp.Topic] = append(byTopic[tp.Topic], tp.Partition)
	}
	names := make([]string, 0, len(byTopic))
	for t, ps := range byTopic {
		names = append(names, t)
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	}
	sort.Strings(names)
	return 0, markUnstable(requested(g.offsets, byTopic, names), unstable)
}

// markUnstable flags the partitions whose offsets an open transaction
// holds: with RequireStable, they answer UNSTABLE_OFFSET_COMMIT.
func markUnstable(fts []fetchedTopic, unstable map[metadata.TP]bool) []fetchedTopic {
	if len(unstable) == 0 {
		return fts
	}
	for i := range fts {
		for j := range fts[i].parts {
			if unstable[metadata.TP{Topic: fts[i].topic, Partition: fts[i].parts[j].partition}] {
				fts[i].parts[j].unstable = true
			}
		}
	}
	return fts
}

func requested(offsets map[metadata.TP]metadata.CommittedOffset, topics map[string][]int32, order []string) []fetchedTopic {
	out := make([]fetchedTopic, 0, len(order))
	for _, t := range order {
		ft := fetchedTopic{topic: t}
		for _, p := range topics[t] {
			off, ok := offsets[metadata.TP{Topic: t, Partition: p}]
			ft.parts = append(ft.parts, fetchedPart{partition: p, off: off, found: ok})
		}
		out = append(out, ft)
	}
	return out
}

// OffsetFetch handles an OffsetFetch request: v0-v7 ask for one group,
// v8+ for several. A null topic list (v2+) asks for every committed
// offset. RequireStable (v7+): a partition whose offset an open transaction
// holds answers UNSTABLE_OFFSET_COMMIT (the client retries).
func (c *Coordinator) OffsetFetch(ctx context.Context, req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version >= 8 {
		for _, rg := range req.Groups {
			topics, order := make(map[string][]int32), []string(nil)
			for _, t := range rg.Topics {
				if _, dup := topics[t.Topic]; !dup {
					order = append(order, t.Topic)
				}
				topics[t.Topic] = append(topics[t.Topic], t.Partitions...)
			}
			code, fetched := c.fetch(ctx, rg.Group, topics, order, rg.Topics == nil, req.RequireStable)
			sg := kmsg.NewOffsetFetchResponseGroup()
			sg.Group = rg.Group
			sg.ErrorCode = code
			for _, ft := range fetched {
				st := kmsg.NewOffsetFetchResponseGroupTopic()
				st.Topic = ft.topic
				for _, fp := range ft.parts {
					sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					sp.Partition = fp.partition
					sp.Offset, sp.LeaderEpoch, sp.Metadata = wireOffset(fp)
					if fp.unstable {
						sp.ErrorCode = kerr.UnstableOffsetCommit.Code
					}
					st.Partitions = append(st.Partitions, sp)
				}
				sg.Topics = append(sg.Topics, st)
			}
			resp.Groups = append(resp.Groups, sg)
		}
		return resp
	}

	topics, order := make(map[string][]int32), []string(nil)
	for _, t := range req.Topics {
		if _, dup := topics[t.Topic]; !dup {
			order = append(order, t.Topic)
		}
		topics[t.Topic] = append(topics[t.Topic], t.Partitions...)
	}
	all := req.Topics == nil && req.Version >= 2
	code, fetched := c.fetch(ctx, req.Group, topics, order, all, req.Version >= 7 && req.RequireStable)
	if code != 0 && req.Version < 2 {
		// v0-v1 have no group-level error: it goes on every partition.
		fetched = requested(nil, topics, order)
	}
	for _, ft := range fetched {
		st := kmsg.NewOffsetFetchResponseTopic()
		st.Topic = ft.topic
		for _, fp := range ft.parts {
			sp := kmsg.NewOffsetFetchResponseTopicPartition()
			sp.Partition = fp.partition
			sp.Offset, sp.LeaderEpoch, sp.Metadata = wireOffset(fp)
			if req.Version < 2 {
				sp.ErrorCode = code
			}
			if fp.unstable {
				sp.ErrorCode = kerr.UnstableOffsetCommit.Code
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if req.Version >= 2 {
		resp.ErrorCode = code
	}
	return resp
}

// wireOffset is a fetched partition as OffsetFetch puts it: -1, -1 and ""
// when nothing is committed.
func wireOffset(fp fetchedPart) (int64, int32, *string) {
	if !fp.found {
		return -1, -1, kmsg.StringPtr("")
	}
	return fp.off.Offset, fp.off.LeaderEpoch, kmsg.StringPtr(fp.off.Metadata)
}

// OffsetDelete handles an OffsetDelete request: an empty group may lose
// any partition's offset; a group with members only those of topics none of
// its members subscribes to (GROUP_SUBSCRIBED_TO_TOPIC otherwise), and only
// for the consumer protocol, whose subscriptions the broker can read.
func (c *Coordinator) OffsetDelete(ctx context.Context, req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	g, code := c.lockOffsets(ctx, req.Group)
	if code != 0 {
		resp.ErrorCode = code
		return resp
	}
	defer g.unlockOffsets()

	g.mu.Lock()
	var subscribed func(string) bool
	switch {
	case !g.existsLocked():
		resp.ErrorCode = kerr.GroupIDNotFound.Code
	case len(g.members) == 0:
		subscribed = func(string) bool { return false }
	case g.protocolType != "consumer":
		resp.ErrorCode = kerr.NonEmptyGroup.Code
	default:
		subscribed = g.subscriptionsLocked()
	}
	g.mu.Unlock()
	if resp.ErrorCode != 0 {
		return resp
	}

	var del []metadata.TP
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		topic, known := c.store.Topic(t.Topic)
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			switch {
			case !known || p.Partition < 0 || p.Partition >= topic.Partitions:
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case subscribed(t.Topic):
				rp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			default:
				del = append(del, metadata.TP{Topic: t.Topic, Partition: p.Partition})
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if len(del) == 0 {
		return resp
	}
	if err := c.store.DeleteOffsets(ctx, req.Group, del); err != nil {
		c.log.Warn("group: deleting committed offsets", "group", req.Group, "err", err)
		resp.Topics = nil
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp
	}
	g.mu.Lock()
	for _, tp := range del {
		delete(g.offsets, tp)
	}
	g.mu.Unlock()
	return resp
}

// subscriptionsLocked returns whether any member subscribes to a topic,
// read from the consumer-protocol metadata of the selected protocol (every
// protocol's while none is selected). A member whose metadata does not
// parse is taken to subscribe to everything: deleting offsets it may use
// would be worse than refusing.
func (g *group) subscriptionsLocked() func(string) bool {
	topics := make(map[string]bool)
	for _, m := range g.members {
		for _, p := range m.protocols {
			if g.protocol != "" && p.Name != g.protocol {
				continue
			}
			var meta kmsg.ConsumerMemberMetadata
			if err := meta.ReadFrom(p.Metadata); err != nil {
				return func(string) bool { return true }
			}
			for _, t := range meta.Topics {
				topics[t] = true
			}
		}
	}
	return func(t string) bool { return topics[t] }
}
