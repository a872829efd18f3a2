package tier

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/tier/objstore"
)

// chunkCache keeps runs read from the object store (one index entry each)
// on local disk within a byte budget, least recently used out first.
// Concurrent misses for the same run share one GET. It is a cache: losing
// it loses nothing.
type chunkCache struct {
	dir     string
	budget  int64
	bucket  objstore.BucketReader
	metrics *metrics

	base   context.Context // canceled by close
	cancel context.CancelFunc
	wg     sync.WaitGroup // prefetches

	mu       sync.Mutex
	closed   bool
	used     int64
	lru      *list.List // of *cacheItem, most recent at the front
	items    map[string]*list.Element
	inflight map[string]*fetchCall
}

type cacheItem struct {
	key  string
	path string
	size int64
}

type fetchCall struct {
	done chan struct{}
	data []byte
	err  error
}

func newChunkCache(dir string, budget int64, bucket objstore.BucketReader, m *metrics) (*chunkCache, error) {
	// Start empty: files of an earlier run are not trusted (and not needed).
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("tier: clear cache: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tier: cache dir: %w", err)
	}
	base, cancel := context.WithCancel(context.Background())
	return &chunkCache{
		dir: dir, budget: budget, bucket: bucket, metrics: m, base: base, cancel: cancel,
		lru: list.New(), items: map[string]*list.Element{}, inflight: map[string]*fetchCall{},
	}, nil
}

// getTimeout bounds one ranged GET (the store's client retries inside it).
// A run is a few MiB: a GET that takes longer is stuck (a connection that
// a network partition left half-open), and every reader of that run waits
// on it, so it is given up and the next reader starts a fresh one.
const getTimeout = 20 * time.Second

// close cancels GETs under way and waits for prefetches.
func (c *chunkCache) close() {
	c.mu.Lock()
	c.closed = true // no prefetch starts after this
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
}

func runKey(e metadata.IndexEntry) string {
	return fmt.Sprintf("%s@%d+%d", e.Object, e.Position, e.Size)
}

// get returns the bytes of e's run, from local disk or with one ranged GET.
func (c *chunkCache) get(ctx context.Context, e metadata.IndexEntry) ([]byte, error) {
	key := runKey(e)
	c.mu.Lock()
	if el, ok := c.items[key]; ok {
		c.lru.MoveToFront(el)
		path := el.Value.(*cacheItem).path
		c.mu.Unlock()
		if data, err := os.ReadFile(path); err == nil && int64(len(data)) == e.Size {
			c.metrics.cacheRequests.WithLabelValues("hit").Inc()
			return data, nil
		}
		// Evicted or damaged under us: fetch again.
		c.mu.Lock()
	}
	if call, ok := c.inflight[key]; ok {
		c.mu.Unlock()
		c.metrics.cacheRequests.WithLabelValues("shared").Inc()
		select {
		case <-call.done:
			return call.data, call.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	call := &fetchCall{done: make(chan struct{})}
	c.inflight[key] = call
	c.mu.Unlock()
	c.metrics.cacheRequests.WithLabelValues("miss").Inc()

	// The GET is not tied to this reader's ctx: others may be waiting on
	// it. It ends with the cache (Close) or its own time limit.
	fctx, cancel := context.WithTimeout(c.base, getTimeout)
	call.data, call.err = c.bucket.GetRange(fctx, e.Object, e.Position, e.Size)
	cancel()
	if call.err == nil {
		c.metrics.objectGets.Inc()
		c.metrics.objectGetBytes.Add(float64(len(call.data)))
		c.store(key, call.data)
	}
	c.mu.Lock()
	delete(c.inflight, key)
	c.mu.Unlock()
	close(call.done)
	return call.data, call.err
}

// store writes data to disk and evicts the least recently used runs over budget.
func (c *chunkCache) store(key string, data []byte) {
	if c.budget <= 0 || int64(len(data)) > c.budget {
		return
	}
	sum := sha256.Sum256([]byte(key))
	path := filepath.Join(c.dir, hex.EncodeToString(sum[:16]))
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.lru.MoveToFront(el)
		return
	}
	c.items[key] = c.lru.PushFront(&cacheItem{key: key, path: path, size: int64(len(data))})
	c.used += int64(len(data))
	for c.used > c.budget && c.lru.Len() > 0 {
		el := c.lru.Back()
		it := el.Value.(*cacheItem)
		c.lru.Remove(el)
		delete(c.items, it.key)
		c.used -= it.size
		os.Remove(it.path)
	}
	c.metrics.cacheBytes.Set(float64(c.used))
}

// prefetch loads e into the cache in the background if it is not there.
func (c *chunkCache) prefetch(e metadata.IndexEntry, sem chan struct{}) {
	key := runKey(e)
	c.mu.Lock()
	defer c.mu.Unlock()
	_, cached := c.items[key]
	_, busy := c.inflight[key]
	if cached || busy || c.closed {
		return
	}
	select {
	case sem <- struct{}{}:
	default:
		return // enough read-ahead under way
	}
	c.wg.Add(1) // under mu, so never concurrent with close's Wait
	go func() {
		defer c.wg.Done()
		defer func() { <-sem }()
		c.get(c.base, e)
	}()
}
