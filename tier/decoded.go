package tier

import (
	"container/list"
	"sync"
)

// decodedCache keeps recently decoded spans (decompressed record batches)
// in memory within a byte budget, least recently used out first. A fetch
// that stops in the middle of a span leaves the rest for the next fetch,
// which then finds it here instead of reading and decompressing it again.
// Entries are immutable: durable data never changes under a key.
type decodedCache struct {
	mu     sync.Mutex
	budget int64
	used   int64
	lru    *list.List // of *decodedItem, most recent at the front
	items  map[string]*list.Element
}

type decodedItem struct {
	key  string
	data []byte
}

func newDecodedCache(budget int64) *decodedCache {
	return &decodedCache{budget: budget, lru: list.New(), items: map[string]*list.Element{}}
}

func (c *decodedCache) get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return nil, false
	}
	c.lru.MoveToFront(el)
	return el.Value.(*decodedItem).data, true
}

func (c *decodedCache) put(key string, data []byte) {
	if int64(len(data)) > c.budget/4 {
		return // one span must not flush everything else
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.lru.MoveToFront(el)
		return
	}
	c.items[key] = c.lru.PushFront(&decodedItem{key: key, data: data})
	c.used += int64(len(data))
	for c.used > c.budget {
		el := c.lru.Back()
		it := el.Value.(*decodedItem)
		c.lru.Remove(el)
		delete(c.items, it.key)
		c.used -= int64(len(it.data))
	}
}
