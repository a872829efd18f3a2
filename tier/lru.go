package tier

import "sync"

// lru is the tier's one cache index: a concurrency-safe map from K to V
// bounded by the total weight (bytes) of its values, least recently used out
// first. The run cache (cache.go: paths of runs on local disk) and the
// decoded-span cache (decoded.go: decompressed batches in memory) are both
// an lru.
//
// The recency list is intrusive (one allocation per entry, none per get),
// and evicted values are handed to onEvict after the lock is released, so
// a slow onEvict (removing a file) never blocks readers.
type lru[K comparable, V any] struct {
	budget   int64          // the most the entries may weigh together
	maxEntry int64          // the most one entry may weigh (<= budget)
	weigh    func(V) int64  // an entry's weight, computed once by put
	onEvict  func(k K, v V) // nil, or called for each value leaving the cache
	// gauge, when not nil, is set to the total weight after every change,
	// with the lock held so that it never goes back to a stale value.
	gauge interface{ Set(float64) }

	mu    sync.Mutex
	used  int64
	items map[K]*lruEntry[K, V]
	root  lruEntry[K, V] // sentinel: root.next is the most recent entry, root.prev the least
}

type lruEntry[K comparable, V any] struct {
	prev, next *lruEntry[K, V]
	key        K
	val        V
	weight     int64
}

// newLRU returns an empty lru holding up to budget in total weight and
// admitting no single value heavier than maxEntry (capped at budget, so an
// admitted value always fits). With budget <= 0 it admits nothing.
// onEvict, when not nil, is called for every value that leaves the cache:
// evicted, replaced under its key, or removed; never with a lock held.
func newLRU[K comparable, V any](budget, maxEntry int64, weigh func(V) int64, onEvict func(K, V)) *lru[K, V] {
	c := &lru[K, V]{budget: budget, maxEntry: min(maxEntry, budget), weigh: weigh, onEvict: onEvict, items: map[K]*lruEntry[K, V]{}}
	c.root.next, c.root.prev = &c.root, &c.root
	return c
}

// get returns the value under k and makes it the most recently used.
func (c *lru[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	e, ok := c.items[k]
	if !ok {
		c.mu.Unlock()
		var zero V
		return zero, false
	}
	c.moveToFront(e)
	v := e.val
	c.mu.Unlock()
	return v, true
}

// contains reports whether k is cached without touching its recency.
func (c *lru[K, V]) contains(k K) bool {
	c.mu.Lock()
	_, ok := c.items[k]
	c.mu.Unlock()
	return ok
}

// put stores v under k as the most recently used value, replacing any value
// k had, then evicts the least recently used values until the total weight
// is within budget. A value heavier than maxEntry is not stored (and k's
// previous value, now stale, is removed): put then returns false.
func (c *lru[K, V]) put(k K, v V) bool {
	w := c.weigh(v)
	// gone chains the values to hand to onEvict by their next links, in
	// the order they left.
	var gone, last *lruEntry[K, V]
	c.mu.Lock()
	e, had := c.items[k]
	switch {
	case c.budget <= 0 || w < 0 || w > c.maxEntry:
		if had {
			c.drop(e)
			gone = e
			gone.next = nil
			c.setGauge()
		}
		c.mu.Unlock()
		c.evicted(gone)
		return false
	case had:
		if c.onEvict != nil {
			gone = &lruEntry[K, V]{key: k, val: e.val}
			last = gone
		}
		c.used += w - e.weight
		e.val, e.weight = v, w
		c.moveToFront(e)
	default:
		e = &lruEntry[K, V]{key: k, val: v, weight: w}
		c.items[k] = e
		c.pushFront(e)
		c.used += w
	}
	for c.used > c.budget {
		// Never e itself: w <= maxEntry <= budget.
		old := c.root.prev
		c.drop(old)
		old.next = nil
		if last == nil {
			gone = old
		} else {
			last.next = old
		}
		last = old
	}
	c.setGauge()
	c.mu.Unlock()
	c.evicted(gone)
	return true
}

// remove drops k's value, if any.
func (c *lru[K, V]) remove(k K) {
	c.mu.Lock()
	e, ok := c.items[k]
	if ok {
		c.drop(e)
		e.next = nil
		c.setGauge()
	}
	c.mu.Unlock()
	if ok {
		c.evicted(e)
	}
}

// bytes returns the total weight held.
func (c *lru[K, V]) bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}

// len returns the number of values held.
func (c *lru[K, V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}

// evicted hands a chain of dropped entries to onEvict. The entries are out
// of the list and the map, so their next links are free for the chain.
func (c *lru[K, V]) evicted(chain *lruEntry[K, V]) {
	if c.onEvict == nil {
		return
	}
	for e := chain; e != nil; e = e.next {
		c.onEvict(e.key, e.val)
	}
}

func (c *lru[K, V]) setGauge() {
	if c.gauge != nil {
		c.gauge.Set(float64(c.used))
	}
}

// drop unlinks e and forgets its key; c.mu is held.
func (c *lru[K, V]) drop(e *lruEntry[K, V]) {
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev = nil
	delete(c.items, e.key)
	c.used -= e.weight
}

func (c *lru[K, V]) pushFront(e *lruEntry[K, V]) {
	e.prev = &c.root
	e.next = c.root.next
	e.prev.next = e
	e.next.prev = e
}

func (c *lru[K, V]) moveToFront(e *lruEntry[K, V]) {
	if c.root.next == e {
		return
	}
	e.prev.next = e.next
	e.next.prev = e.prev
	c.pushFront(e)
}
