package metadata

// The watch-fed cache. Every item remembers the etcd revision that wrote it
// and an event only replaces an older item, so the Store can apply its own
// writes at once (callers see them as soon as the call returns) and the watch
// re-delivering the same writes later changes nothing.

import (
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"
)

// pkey names a partition by topic ID, as the etcd keys do.
type pkey struct {
	topic TopicID
	part  int32
}

// event is one change under the cluster prefix: from the watch, from the
// initial load (as puts), or synthesised from this Store's own transaction.
type event struct {
	del       bool
	key       string
	value     []byte
	modRev    int64 // for a delete: the revision of the delete
	createRev int64
}

type cachedTopic struct {
	t         Topic
	createRev int64
	modRev    int64
}

type cachedNode struct {
	n      Node
	modRev int64
}

type cachedLeader struct {
	node   int32
	epoch  int32
	modRev int64
}

type cachedEntry struct {
	e      IndexEntry
	modRev int64
}

// cache holds what the Store serves without asking etcd.
type cache struct {
	keys   keys
	logger *slog.Logger

	mu sync.RWMutex
	// rev is the revision up to which every event under the prefix has been
	// applied (from the load or the watch); the watch resumes at rev+1.
	rev    int64
	topics map[string]cachedTopic
	byID   map[TopicID]string
	nodes  map[int32]cachedNode
	// nodesVersion counts changes of the live node set (and reloads).
	nodesVersion int64
	// sorted is the live nodes sorted by id as of sortedVersion (built on
	// first use after a change; shared, never modified).
	sorted        []Node
	sortedVersion int64
	leaders       map[pkey]cachedLeader
	index         map[pkey][]cachedEntry // sorted by BaseOffset
	// acls are the ACL bindings by id; aclVersion counts their changes.
	acls       map[string]ACL
	aclVersion int64
	// quotas are the client quotas by entity key.
	quotas       map[string]map[string]float64
	quotaVersion int64
	// pending holds this Store's own writes newer than rev: a reload from a
	// snapshot older than them must not lose them.
	pending []event
}

func newCache(k keys, logger *slog.Logger) *cache {
	c := &cache{keys: k, logger: logger}
	c.resetLocked()
	return c
}

func (c *cache) resetLocked() {
	c.topics = make(map[string]cachedTopic)
	c.byID = make(map[TopicID]string)
	c.nodes = make(map[int32]cachedNode)
	c.nodesVersion++
	c.leaders = make(map[pkey]cachedLeader)
	c.index = make(map[pkey][]cachedEntry)
	c.acls = make(map[string]ACL)
	c.aclVersion++
	c.quotas = make(map[string]map[string]float64)
	c.quotaVersion++
}

// revision returns the revision the watch should resume after.
func (c *cache) revision() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.rev
}

// replace installs a full snapshot read at revision rev (the initial load or
// a reload after compaction). Own writes newer than the snapshot are applied
// again on top.
func (c *cache) replace(rev int64, snapshot []event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resetLocked()
	for _, ev := range snapshot {
		c.applyLocked(ev)
	}
	c.rev = rev
	kept := c.pending[:0]
	for _, ev := range c.pending {
		if ev.modRev > rev {
			c.applyLocked(ev)
			kept = append(kept, ev)
		}
	}
	clear(c.pending[len(kept):])
	c.pending = kept
}

// applyWatched applies one batch of watched events, all of revision <= rev,
// and advances the resume revision to rev.
func (c *cache) applyWatched(evs []event, rev int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ev := range evs {
		c.applyLocked(ev)
	}
	if rev > c.rev {
		c.rev = rev
	}
	if len(c.pending) > 0 {
		kept := c.pending[:0]
		for _, ev := range c.pending {
			if ev.modRev > c.rev {
				kept = append(kept, ev)
			}
		}
		clear(c.pending[len(kept):])
		c.pending = kept
	}
}

// applyOwn applies this Store's own committed writes. Those the watch has
// already passed are skipped: the watch applied them and maybe later changes.
func (c *cache) applyOwn(evs ...event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ev := range evs {
		if ev.modRev <= c.rev {
			continue
		}
		c.applyLocked(ev)
		c.pending = append(c.pending, ev)
	}
}

// applyLocked applies one event if it is newer than what the cache holds.
// Bad keys and values are skipped (logged): the cache must not trust or
// crash on what is in etcd.
func (c *cache) applyLocked(ev event) {
	pk := c.keys.parseKey(ev.key)
	switch pk.kind {
	case kindNode:
		old, ok := c.nodes[pk.node]
		if ok && old.modRev > ev.modRev {
			return
		}
		if ev.del {
			if ok {
				c.nodesVersion++
			}
			delete(c.nodes, pk.node)
			return
		}
		n, err := decodeNode(ev.value)
		if err != nil || n.ID != pk.node {
			c.logger.Warn("metadata: skipping bad node key", "key", ev.key, "err", err)
			return
		}
		if !ok || old.n != n || old.modRev != ev.modRev {
			c.nodesVersion++
		}
		c.nodes[pk.node] = cachedNode{n: n, modRev: ev.modRev}

	case kindTopic:
		old, ok := c.topics[pk.name]
		if ok && old.modRev > ev.modRev {
			return
		}
		if ev.del {
			if ok {
				delete(c.topics, pk.name)
				delete(c.byID, old.t.ID)
				c.dropPartitionsLocked(old.t.ID, ev.modRev)
			}
			return
		}
		t, err := decodeTopic(ev.value)
		if err != nil || t.Name != pk.name {
			c.logger.Warn("metadata: skipping bad topic key", "key", ev.key, "err", err)
			return
		}
		if ok && old.t.ID != t.ID {
			delete(c.byID, old.t.ID)
		}
		c.topics[pk.name] = cachedTopic{t: t, createRev: ev.createRev, modRev: ev.modRev}
		c.byID[t.ID] = pk.name

	case kindLeader:
		k := pkey{pk.topic, pk.part}
		old, ok := c.leaders[k]
		if ok && old.modRev > ev.modRev {
			return
		}
		if ev.del {
			delete(c.leaders, k)
			return
		}
		r, err := decodeLeader(ev.value)
		if err != nil {
			c.logger.Warn("metadata: skipping bad leader key", "key", ev.key, "err", err)
			return
		}
		c.leaders[k] = cachedLeader{node: r.Node, epoch: r.Epoch, modRev: ev.modRev}

	case kindACL:
		c.aclVersion++
		if ev.del {
			delete(c.acls, pk.id)
			return
		}
		a, err := decodeACL(ev.value)
		if err != nil {
			c.logger.Warn("metadata: skipping bad ACL", "key", ev.key, "err", err)
			return
		}
		c.acls[pk.id] = a

	case kindQuota:
		c.quotaVersion++
		if ev.del {
			delete(c.quotas, pk.id)
			return
		}
		var q map[string]float64
		if err := json.Unmarshal(ev.value, &q); err != nil {
			c.logger.Warn("metadata: skipping bad quota", "key", ev.key, "err", err)
			return
		}
		c.quotas[pk.id] = q

	case kindIndex:
		k := pkey{pk.topic, pk.part}
		if ev.del {
			c.deleteEntryLocked(k, pk.base, ev.modRev)
			return
		}
		e, err := decodeIndexEntry(ev.value)
		if err != nil || e.BaseOffset != pk.base {
			c.logger.Warn("metadata: skipping bad index entry", "key", ev.key, "err", err)
			return
		}
		c.putEntryLocked(k, cachedEntry{e: e, modRev: ev.modRev})
	}
	// Epoch, state and log start keys are read from etcd when needed, never
	// served from the cache.
}

// dropPartitionsLocked forgets a deleted topic's leaders and index entries
// written at or before rev (the etcd range delete removes them too; this
// makes a Store's own DeleteTopic visible at once).
func (c *cache) dropPartitionsLocked(id TopicID, rev int64) {
	for k, l := range c.leaders {
		if k.topic == id && l.modRev <= rev {
			delete(c.leaders, k)
		}
	}
	for k, es := range c.index {
		if k.topic != id {
			continue
		}
		kept := es[:0]
		for _, e := range es {
			if e.modRev > rev {
				kept = append(kept, e)
			}
		}
		if len(kept) == 0 {
			delete(c.index, k)
		} else {
			c.index[k] = kept
		}
	}
}

func (c *cache) putEntryLocked(k pkey, ce cachedEntry) {
	es := c.index[k]
	// Entries almost always arrive in offset order: check the tail first.
	n := len(es)
	if n == 0 || es[n-1].e.BaseOffset < ce.e.BaseOffset {
		c.index[k] = append(es, ce)
		return
	}
	i := sort.Search(n, func(i int) bool { return es[i].e.BaseOffset >= ce.e.BaseOffset })
	if i < n && es[i].e.BaseOffset == ce.e.BaseOffset {
		if es[i].modRev <= ce.modRev {
			es[i] = ce
		}
		return
	}
	es = append(es, cachedEntry{})
	copy(es[i+1:], es[i:])
	es[i] = ce
	c.index[k] = es
}

func (c *cache) deleteEntryLocked(k pkey, base, rev int64) {
	es := c.index[k]
	i := sort.Search(len(es), func(i int) bool { return es[i].e.BaseOffset >= base })
	if i == len(es) || es[i].e.BaseOffset != base || es[i].modRev > rev {
		return
	}
	es = append(es[:i], es[i+1:]...)
	if len(es) == 0 {
		delete(c.index, k)
		return
	}
	c.index[k] = es
}

// The readers. They return copies: callers may keep and modify them.

func (c *cache) topic(name string) (cachedTopic, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.topics[name]
	t.t.Configs = maps.Clone(t.t.Configs)
	return t, ok
}

func (c *cache) topicByID(id TopicID) (Topic, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	name, ok := c.byID[id]
	if !ok {
		return Topic{}, false
	}
	t := c.topics[name].t
	t.Configs = maps.Clone(t.Configs)
	return t, true
}

func (c *cache) allTopics() []Topic {
	c.mu.RLock()
	ts := make([]Topic, 0, len(c.topics))
	for _, ct := range c.topics {
		t := ct.t
		t.Configs = maps.Clone(t.Configs)
		ts = append(ts, t)
	}
	c.mu.RUnlock()
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	return ts
}

func (c *cache) allNodes() []Node { return slices.Clone(c.nodeList()) }

// nodeList is the live nodes sorted by id. The slice is shared by every
// caller until the node set changes: it must not be modified. Placement
// (rendezvous) asks for it on every produce and fetch, so it is built once
// per change, not per call.
func (c *cache) nodeList() []Node {
	c.mu.RLock()
	if c.sorted != nil && c.sortedVersion == c.nodesVersion {
		ns := c.sorted
		c.mu.RUnlock()
		return ns
	}
	c.mu.RUnlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sorted == nil || c.sortedVersion != c.nodesVersion {
		ns := make([]Node, 0, len(c.nodes))
		for _, cn := range c.nodes {
			ns = append(ns, cn.n)
		}
		sort.Slice(ns, func(i, j int) bool { return ns[i].ID < ns[j].ID })
		c.sorted, c.sortedVersion = ns, c.nodesVersion
	}
	return c.sorted
}

// topicShared is topic without the copy of its configs: the map is shared
// with the cache and every other caller, and must not be modified (the
// cache replaces a topic's map on every change, never edits it).
func (c *cache) topicShared(name string) (Topic, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.topics[name]
	return t.t, ok
}

func (c *cache) leader(tp TP) (Leadership, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.topics[tp.Topic]
	if !ok {
		return Leadership{}, false
	}
	l, ok := c.leaders[pkey{t.t.ID, tp.Partition}]
	if !ok {
		return Leadership{}, false
	}
	return Leadership{TP: tp, TopicID: t.t.ID, NodeID: l.node, Epoch: l.epoch, Revision: l.modRev}, true
}

// indexEntries returns the entries of tp with LastOffset >= from. Entries of
// a partition do not overlap, so both BaseOffset and LastOffset ascend.
func (c *cache) indexEntries(tp TP, from int64) []IndexEntry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.topics[tp.Topic]
	if !ok {
		return nil
	}
	es := c.index[pkey{t.t.ID, tp.Partition}]
	i := sort.Search(len(es), func(i int) bool { return es[i].e.LastOffset >= from })
	if i == len(es) {
		return nil
	}
	out := make([]IndexEntry, len(es)-i)
	for j := range out {
		out[j] = es[i+j].e
	}
	return out
}

func (c *cache) indexSummary(tp TP) (IndexSummary, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.topics[tp.Topic]
	if !ok {
		return IndexSummary{}, false
	}
	es := c.index[pkey{t.t.ID, tp.Partition}]
	if len(es) == 0 {
		return IndexSummary{}, false
	}
	sum := IndexSummary{Start: es[0].e.BaseOffset, End: es[len(es)-1].e.LastOffset + 1, Entries: len(es)}
	objects := make(map[string]struct{}, len(es))
	for _, ce := range es {
		objects[ce.e.Object] = struct{}{}
		sum.Bytes += ce.e.Size
		sum.Records += ce.e.Records
	}
	sum.Objects = len(objects)
	return sum, true
}

func (c *cache) entryFrom(tp TP, offset int64) (IndexEntry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.topics[tp.Topic]
	if !ok {
		return IndexEntry{}, false
	}
	es := c.index[pkey{t.t.ID, tp.Partition}]
	i := sort.Search(len(es), func(i int) bool { return es[i].e.LastOffset >= offset })
	if i == len(es) {
		return IndexEntry{}, false
	}
	return es[i].e, true
}
