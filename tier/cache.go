package tier

import (
	"context"
	"fmt"
	"os"
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
	// runs indexes the files on disk by runKey; evicting a run removes its
	// file. Every file has a name of its own (never reused for another
	// write), so removing an evicted or replaced file cannot hit a newer one.
	runs *lru[string, diskRun]

	base   context.Context // canceled by close
	cancel context.CancelFunc
	wg     sync.WaitGroup // prefetches

	// mu orders the inflight map and closed; runs has its own lock, taken
	// inside mu (never the other way round).
	mu       sync.Mutex
	closed   bool
	inflight map[string]*fetchCall
}

// diskRun is a cached run's file and its size.
type diskRun struct {
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
	runs := newLRU[string](budget, budget,
		func(r diskRun) int64 { return r.size },
		func(_ string, r diskRun) { os.Remove(r.path) })
	runs.gauge = m.cacheBytes
	return &chunkCache{
		dir: dir, budget: budget, bucket: bucket, metrics: m, runs: runs, base: base, cancel: cancel,
		inflight: map[string]*fetchCall{},
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
	// Under mu, a run is either in runs or in inflight from the start of
	// its GET until it is stored: a miss here is never a GET just finished.
	if r, ok := c.runs.get(key); ok {
		c.mu.Unlock()
		if data, err := os.ReadFile(r.path); err == nil && int64(len(data)) == e.Size {
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

// store writes data to a file of its own and indexes it under key (a run
// cached already, whose file was damaged, is replaced); runs evicts the
// least recently used runs over budget and removes their files.
func (c *chunkCache) store(key string, data []byte) {
	if c.budget <= 0 || int64(len(data)) > c.budget {
		return
	}
	// A file is indexed only once written and closed, so no reader sees
	// it partly written; a crash leaves strays that the next start's
	// RemoveAll clears.
	f, err := os.CreateTemp(c.dir, "run-*")
	if err != nil {
		return
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil || !c.runs.put(key, diskRun{path: f.Name(), size: int64(len(data))}) {
		os.Remove(f.Name())
	}
}

// prefetch loads e into the cache in the background if it is not there.
func (c *chunkCache) prefetch(e metadata.IndexEntry, sem chan struct{}) {
	key := runKey(e)
	c.mu.Lock()
	defer c.mu.Unlock()
	cached := c.runs.contains(key)
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
