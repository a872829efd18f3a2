package ingest

// Fetch sessions (KIP-227), as Kafka's FetchSessionCache keeps them.
//
// A session remembers, for one fetching client, the partitions it fetches
// (offset, leader epoch, max bytes) and what the client was last told about
// each (high watermark, last stable offset, log start offset). An
// incremental fetch then names only the partitions that changed on the
// client's side, and is answered only with the partitions that changed on
// ours (01_fetch.go). Sessions are per node and in memory: a node that
// restarts, or evicts a session, answers FETCH_SESSION_ID_NOT_FOUND and the
// client starts over with a full fetch.
//
// Bounds: at most Config.FetchSessionCacheSlots sessions (Kafka's
// max.incremental.fetch.session.cache.slots, 1000) holding at most
// maxFetchSessionPartitions partitions in all. A session unused for
// fetchSessionIdle (Kafka's min.incremental.fetch.session.eviction.ms, 2
// minutes) is evicted, lazily, by the next fetch that opens or uses a
// session. When the cache is full a new session takes the place of a stale
// one, else of the smallest session older than fetchSessionIdle when it is
// larger (Kafka's rule); else the fetch is answered without a session
// (SessionID 0), which clients take as "keep sending full fetches".
//
// A session is used by one fetch at a time (a fetch holds it from its
// request to its response, long poll included). Clients never have two
// fetches of one session in flight; a fetch that finds its session held by
// another is INVALID_FETCH_SESSION_EPOCH, which makes the client start a new
// session. Any connection may use a session: the id is the client's.

import (
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
)

const (
	// defaultFetchSessionSlots is Kafka's
	// max.incremental.fetch.session.cache.slots default.
	defaultFetchSessionSlots = 1000
	// fetchSessionIdle is how long a session may go unused before it is
	// evicted (Kafka's min.incremental.fetch.session.eviction.ms).
	fetchSessionIdle = 2 * time.Minute
	// maxFetchSessionPartitions bounds the partitions all sessions of a
	// node hold (a few hundred bytes each).
	maxFetchSessionPartitions = 1 << 20
)

// fetchKey names a session partition as its client does: by topic name
// (fetch v7-v12) or by topic id (v13+).
type fetchKey struct {
	name string
	id   metadata.TopicID
	p    int32
}

// fetchSession is one client's session. Its parts and the fields below
// parts belong to the fetch that holds it (busy); the cache's fields are
// guarded by the cache's mutex.
type fetchSession struct {
	id int32
	// ids: the session names topics by id (it was created by a v13+
	// fetch); by name otherwise.
	ids bool

	// Guarded by fetchSessionCache.mu.
	epoch      int32 // the epoch the next incremental fetch must carry
	busy       bool  // a fetch holds the session
	created    time.Time
	used       time.Time
	size       int           // len(parts) as counted in the cache's total
	prev, next *fetchSession // the cache's LRU ring

	// Held by the fetch using the session.
	parts []*fetchPart // in fetch order
	index map[fetchKey]*fetchPart
	// seq counts the session's fetches; a part's seq is the last fetch
	// that named it.
	seq     uint64
	scratch []*fetchPart
	waits   []<-chan struct{}
}

// fetchSessionCache is a node's fetch sessions.
type fetchSessionCache struct {
	slots, maxParts int
	idle            time.Duration
	now             func() time.Time

	mu        sync.Mutex
	sessions  map[int32]*fetchSession
	lru       fetchSession // sentinel: lru.next is the least recently used
	parts     int          // partitions held by all sessions
	lastSweep time.Time

	created, evicted prometheus.Counter
}

// newFetchSessionCache makes a cache of slots sessions (0: the default,
// negative: none, every fetch is sessionless) and registers its metrics
// with reg when not nil.
func newFetchSessionCache(slots int, reg prometheus.Registerer) *fetchSessionCache {
	switch {
	case slots == 0:
		slots = defaultFetchSessionSlots
	case slots < 0:
		slots = 0
	}
	c := &fetchSessionCache{
		slots:    slots,
		maxParts: maxFetchSessionPartitions,
		idle:     fetchSessionIdle,
		now:      time.Now,
		sessions: make(map[int32]*fetchSession),
		created: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_fetch_sessions_created_total",
			Help: "Fetch sessions (KIP-227) created by full fetches.",
		}),
		evicted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_fetch_sessions_evicted_total",
			Help: "Fetch sessions evicted: idle too long, or taken over by a larger session when the cache was full.",
		}),
	}
	c.lru.prev, c.lru.next = &c.lru, &c.lru
	if reg != nil {
		reg.MustRegister(c.created, c.evicted,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "strata_fetch_sessions",
				Help: "Fetch sessions (KIP-227) this node holds.",
			}, func() float64 { n, _ := c.stats(); return float64(n) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "strata_fetch_session_partitions",
				Help: "Partitions held by this node's fetch sessions.",
			}, func() float64 { _, p := c.stats(); return float64(p) }),
		)
	}
	return c
}

// stats returns the sessions and the partitions they hold.
func (c *fetchSessionCache) stats() (sessions, parts int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sessions), c.parts
}

// nextFetchEpoch is the epoch after e, wrapping to 1 (Kafka's
// FetchMetadata.nextEpoch).
func nextFetchEpoch(e int32) int32 {
	if e == math.MaxInt32 {
		return 1
	}
	return e + 1
}

// remove closes session id, if there is one: a full fetch naming it, or
// epoch -1.
func (c *fetchSessionCache) remove(id int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if sess := c.sessions[id]; sess != nil {
		c.dropLocked(sess)
	}
}

// acquire takes session id for an incremental fetch at epoch (a v13+ fetch
// when ids): the fetch holds it until release. Else it returns the error
// the fetch is answered with.
func (c *fetchSessionCache) acquire(id, epoch int32, ids bool) (*fetchSession, int16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.sweepLocked(now)
	sess := c.sessions[id]
	switch {
	case sess == nil:
		return nil, kerr.FetchSessionIDNotFound.Code
	case sess.busy || sess.epoch != epoch:
		return nil, kerr.InvalidFetchSessionEpoch.Code
	case sess.ids != ids:
		// A session keyed by names used at v13+, or the reverse.
		return nil, kerr.FetchSessionTopicIDError.Code
	}
	sess.busy = true
	sess.epoch = nextFetchEpoch(sess.epoch)
	c.touchLocked(sess, now)
	return sess, 0
}

// resize counts sess's partitions after its fetch changed them (ok:
// update kept within its limit). When all sessions would hold more than the
// cache's bound, or update could not, the session is dropped and resize
// returns false: the fetch is answered FETCH_SESSION_ID_NOT_FOUND and the
// client starts over (with a full fetch, sessionless when there is no
// room). A session left empty is dropped too (as Kafka does), and its fetch
// answered without a session.
func (c *fetchSessionCache) resize(sess *fetchSession, ok bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sessions[sess.id] != sess {
		return ok // evicted meanwhile: nothing to count
	}
	if n := len(sess.parts); !ok || n > sess.size && c.parts+n-sess.size > c.maxParts {
		c.dropLocked(sess)
		return false
	}
	c.parts += len(sess.parts) - sess.size
	sess.size = len(sess.parts)
	if sess.size == 0 {
		c.dropLocked(sess)
	}
	return true
}

// release ends a fetch's hold on sess.
func (c *fetchSessionCache) release(sess *fetchSession) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sess.busy = false
	if c.sessions[sess.id] == sess {
		c.touchLocked(sess, c.now())
	}
}

// create makes a session of a full fetch's parts (a v13+ fetch when ids)
// and returns its id, or 0 when there is no room. The session takes parts
// and the index it builds: the caller must not use them after.
func (c *fetchSessionCache) create(parts []*fetchPart, ids bool) int32 {
	if c.slots == 0 || len(parts) > c.maxParts {
		return 0
	}
	// Make room first, so a client that keeps opening sessions in a full
	// cache (the Java client does) costs no index each time.
	c.mu.Lock()
	now := c.now()
	c.sweepLocked(now)
	room := len(c.sessions) < c.slots || c.evictForLocked(len(parts), now)
	c.mu.Unlock()
	if !room {
		return 0
	}

	index := make(map[fetchKey]*fetchPart, len(parts))
	kept := parts[:0]
	for _, fp := range parts {
		k := fp.key(ids)
		if _, dup := index[k]; dup {
			continue // named twice in one request: the session keeps the first
		}
		index[k] = fp
		kept = append(kept, fp)
	}
	parts = kept

	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.sessions) >= c.slots || c.parts+len(parts) > c.maxParts {
		return 0 // taken meanwhile
	}
	sess := &fetchSession{
		ids:     ids,
		epoch:   1,
		created: now,
		parts:   parts,
		index:   index,
		size:    len(parts),
	}
	for {
		sess.id = rand.Int32N(math.MaxInt32) + 1 // 1 .. MaxInt32
		if _, taken := c.sessions[sess.id]; !taken {
			break
		}
	}
	c.sessions[sess.id] = sess
	c.parts += sess.size
	c.touchLocked(sess, now)
	c.created.Inc()
	return sess.id
}

// evictForLocked makes room for a new session of size partitions in a
// full cache, as Kafka's tryEvict: the least recently used session if it
// is stale, else the smallest session created longer than idle ago if it
// is smaller than the new one. It reports whether it evicted.
func (c *fetchSessionCache) evictForLocked(size int, now time.Time) bool {
	if lru := c.lru.next; lru != &c.lru && !lru.busy && now.Sub(lru.used) > c.idle {
		c.dropLocked(lru)
		c.evicted.Inc()
		return true
	}
	var weakest *fetchSession
	for sess := c.lru.next; sess != &c.lru; sess = sess.next {
		if sess.busy || now.Sub(sess.created) <= c.idle {
			continue
		}
		if weakest == nil || sess.size < weakest.size {
			weakest = sess
		}
	}
	if weakest == nil || weakest.size >= size {
		return false
	}
	c.dropLocked(weakest)
	c.evicted.Inc()
	return true
}

// sweepLocked evicts the sessions unused for longer than idle, looking at
// most every quarter of idle.
func (c *fetchSessionCache) sweepLocked(now time.Time) {
	if now.Sub(c.lastSweep) < c.idle/4 {
		return
	}
	c.lastSweep = now
	for sess := c.lru.next; sess != &c.lru && now.Sub(sess.used) > c.idle; {
		next := sess.next
		if !sess.busy {
			c.dropLocked(sess)
			c.evicted.Inc()
		}
		sess = next
	}
}

// touchLocked marks sess used now: the most recently used.
func (c *fetchSessionCache) touchLocked(sess *fetchSession, now time.Time) {
	sess.used = now
	if sess.next != nil {
		sess.prev.next, sess.next.prev = sess.next, sess.prev
	}
	sess.prev, sess.next = c.lru.prev, &c.lru
	c.lru.prev.next = sess
	c.lru.prev = sess
}

// dropLocked takes sess out of the cache. A fetch holding it finishes with
// it, unseen by any other.
func (c *fetchSessionCache) dropLocked(sess *fetchSession) {
	delete(c.sessions, sess.id)
	c.parts -= sess.size
	sess.size = 0
	if sess.next != nil {
		sess.prev.next, sess.next.prev = sess.next, sess.prev
		sess.prev, sess.next = nil, nil
	}
}

// update applies an incremental fetch to the session its fetch holds: the
// partitions topics name are added or take the request's offset, leader
// epoch and max bytes (denied marks the topics the authorizer took out),
// then the forgotten ones are removed, in Kafka's order. Nothing is
// rebuilt: a fetch naming nothing costs nothing here. It adds no partition
// past limit and returns false if it had to (the session is then dropped).
func (sess *fetchSession) update(topics []kmsg.FetchRequestTopic, denied []bool, forgotten []kmsg.FetchRequestForgottenTopic, limit int) bool {
	sess.seq++
	for i := range topics {
		rt := &topics[i]
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			k := fetchKey{p: rp.Partition}
			if sess.ids {
				k.id = rt.TopicID
			} else {
				k.name = rt.Topic
			}
			fp := sess.index[k]
			if fp == nil {
				if len(sess.parts) >= limit {
					return false
				}
				fp = &fetchPart{name: k.name, id: k.id, partition: k.p, sentHW: -1, sentLSO: -1, sentLogStart: -1}
				sess.index[k] = fp
				sess.parts = append(sess.parts, fp)
			}
			fp.set(rp)
			fp.named = sess.seq
			fp.skip = denied != nil && denied[i]
		}
	}
	removed := false
	for i := range forgotten {
		ft := &forgotten[i]
		for _, p := range ft.Partitions {
			k := fetchKey{p: p}
			if sess.ids {
				k.id = ft.TopicID
			} else {
				k.name = ft.Topic
			}
			if _, ok := sess.index[k]; ok {
				delete(sess.index, k)
				removed = true
			}
		}
	}
	if removed {
		kept := sess.parts[:0]
		for _, fp := range sess.parts {
			if sess.index[fp.key(sess.ids)] == fp { // not forgotten
				kept = append(kept, fp)
			}
		}
		clear(sess.parts[len(kept):])
		sess.parts = kept
	}
	return true
}

// sent records what the response going out tells the client, and moves
// the partitions that returned records to the end of the session's order
// (Kafka's fairness: the others are read first next time).
func (sess *fetchSession) sent() {
	moved := sess.scratch[:0]
	n := 0
	for _, fp := range sess.parts {
		if fp.out || fp.skip {
			fp.sent()
		}
		if fp.data {
			moved = append(moved, fp)
			continue
		}
		sess.parts[n] = fp
		n++
	}
	copy(sess.parts[n:], moved)
	clear(moved)
	sess.scratch = moved[:0]
}
