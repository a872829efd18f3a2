package tier

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/tier/objstore"
)

func byteLen(b []byte) int64 { return int64(len(b)) }

// keysChecked returns c's keys, most recently used first, after checking that the
// list, the map and the weight total agree.
func (c *lru[K, V]) keysChecked(t testing.TB) []K {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var ks []K
	var used int64
	for e := c.root.next; e != &c.root; e = e.next {
		if e.next.prev != e {
			t.Fatalf("broken list at %v", e.key)
		}
		if c.items[e.key] != e {
			t.Fatalf("list entry %v is not the map's", e.key)
		}
		ks = append(ks, e.key)
		used += e.weight
	}
	if len(ks) != len(c.items) {
		t.Fatalf("list has %d entries, map %d", len(ks), len(c.items))
	}
	if used != c.used {
		t.Fatalf("entries weigh %d, used says %d", used, c.used)
	}
	if c.used > c.budget {
		t.Fatalf("used %d over budget %d", c.used, c.budget)
	}
	return ks
}

func TestLRUEvictsLeastRecentlyUsed(t *testing.T) {
	var evicted []string
	c := newLRU[string](30, 30, byteLen, func(k string, v []byte) { evicted = append(evicted, k) })
	for _, k := range []string{"a", "b", "c"} {
		if !c.put(k, make([]byte, 10)) {
			t.Fatalf("put %s refused", k)
		}
	}
	if got := c.keysChecked(t); !slices.Equal(got, []string{"c", "b", "a"}) {
		t.Fatalf("order %v", got)
	}
	if _, ok := c.get("a"); !ok { // a becomes the most recent
		t.Fatal("a missing")
	}
	if !c.contains("b") { // contains does not touch recency
		t.Fatal("b missing")
	}
	c.put("d", make([]byte, 10)) // evicts b, the least recent
	if got := c.keysChecked(t); !slices.Equal(got, []string{"d", "a", "c"}) {
		t.Fatalf("order %v after evicting", got)
	}
	if !slices.Equal(evicted, []string{"b"}) {
		t.Fatalf("evicted %v, want [b]", evicted)
	}
	if _, ok := c.get("b"); ok {
		t.Fatal("b still cached")
	}
	// One heavy value evicts as many as it needs, oldest first.
	c.put("e", make([]byte, 25))
	if got := c.keysChecked(t); !slices.Equal(got, []string{"e"}) {
		t.Fatalf("order %v after a heavy put", got)
	}
	if !slices.Equal(evicted, []string{"b", "c", "a", "d"}) {
		t.Fatalf("evicted %v", evicted)
	}
	c.remove("e")
	c.remove("nothing")
	if c.len() != 0 || c.bytes() != 0 || len(evicted) != 5 {
		t.Fatalf("after remove: len %d, bytes %d, evicted %v", c.len(), c.bytes(), evicted)
	}
}

func TestLRUByteBound(t *testing.T) {
	const budget = 1000
	c := newLRU[int](budget, budget/4, byteLen, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		n := rng.IntN(budget / 4)
		c.put(rng.IntN(200), make([]byte, n))
		if i%97 == 0 {
			c.keysChecked(t)
		}
		if b := c.bytes(); b > budget {
			t.Fatalf("holds %d bytes, budget %d", b, budget)
		}
	}
	c.keysChecked(t)

	// A value over maxEntry is refused, and the stale value under its key
	// goes too.
	c = newLRU[int](budget, budget/4, byteLen, nil)
	c.put(1, make([]byte, 10))
	c.put(2, make([]byte, 10))
	if c.put(1, make([]byte, budget/4+1)) {
		t.Fatal("value over maxEntry admitted")
	}
	if c.contains(1) || !c.contains(2) || c.bytes() != 10 {
		t.Fatalf("after a refused replace: has 1 %v, has 2 %v, bytes %d", c.contains(1), c.contains(2), c.bytes())
	}
	// maxEntry above budget is capped at budget.
	c = newLRU[int](budget, 10*budget, byteLen, nil)
	if c.put(1, make([]byte, budget+1)) || !c.put(2, make([]byte, budget)) {
		t.Fatal("maxEntry not capped at budget")
	}
	// No budget, nothing cached, not even weightless values.
	c = newLRU[int](0, 0, byteLen, nil)
	if c.put(1, nil) || c.len() != 0 {
		t.Fatal("zero budget admitted a value")
	}
}

func TestLRUReplaceKey(t *testing.T) {
	type ev struct {
		k string
		v string
	}
	var evicted []ev
	c := newLRU[string](10, 10, func(s string) int64 { return int64(len(s)) }, func(k, v string) { evicted = append(evicted, ev{k, v}) })
	c.put("a", "1234")
	c.put("b", "12")
	c.put("a", "123") // replaced: new weight, most recent, old value handed to onEvict
	if v, _ := c.get("b"); v != "12" {
		t.Fatalf("b = %q", v)
	}
	if got := c.keysChecked(t); !slices.Equal(got, []string{"b", "a"}) {
		t.Fatalf("order %v", got)
	}
	if c.bytes() != 5 {
		t.Fatalf("bytes %d, want 5", c.bytes())
	}
	if !slices.Equal(evicted, []ev{{"a", "1234"}}) {
		t.Fatalf("evicted %v", evicted)
	}
	if v, _ := c.get("a"); v != "123" {
		t.Fatalf("a = %q after replace", v)
	}
	// A heavier replacement evicts others to fit.
	c.put("a", "123456789")
	if got := c.keysChecked(t); !slices.Equal(got, []string{"a"}) || c.bytes() != 9 {
		t.Fatalf("order %v, bytes %d", got, c.bytes())
	}
	if !slices.Equal(evicted, []ev{{"a", "1234"}, {"a", "123"}, {"b", "12"}}) {
		t.Fatalf("evicted %v", evicted)
	}
}

type testGauge struct{ v atomic.Int64 }

func (g *testGauge) Set(f float64) { g.v.Store(int64(f)) }

// Run with -race: concurrent gets, puts, replaces and removes keep the list,
// map, weight total, gauge and onEvict accounting consistent.
func TestLRUConcurrent(t *testing.T) {
	const budget = 4096
	var evictedBytes atomic.Int64
	var g testGauge
	c := newLRU[int](budget, budget/8, byteLen, func(_ int, v []byte) { evictedBytes.Add(int64(len(v))) })
	c.gauge = &g
	var putBytes atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for range 20000 {
				k := rng.IntN(300)
				switch r := rng.IntN(10); {
				case r < 6:
					if v, ok := c.get(k); ok && len(v) > 0 && v[0] != byte(k) {
						t.Errorf("key %d holds a value of key %d", k, v[0])
						return
					}
				case r < 9:
					v := make([]byte, 1+rng.IntN(budget/8))
					v[0] = byte(k)
					if c.put(k, v) {
						putBytes.Add(int64(len(v)))
					}
				default:
					c.remove(k)
				}
			}
		})
	}
	wg.Wait()
	c.keysChecked(t)
	if held := c.bytes(); putBytes.Load()-evictedBytes.Load() != held {
		t.Fatalf("put %d - evicted %d != held %d", putBytes.Load(), evictedBytes.Load(), held)
	}
	if g.v.Load() != c.bytes() {
		t.Fatalf("gauge %d, bytes %d", g.v.Load(), c.bytes())
	}
}

func TestDecodedCacheAdmitsAQuarterOfItsBudget(t *testing.T) {
	c := newDecodedCache(400)
	if c.put("big", make([]byte, 101)) {
		t.Fatal("a span over budget/4 was cached")
	}
	for i := range 5 {
		c.put(strconv.Itoa(i), make([]byte, 100))
	}
	if c.len() != 4 || c.contains("0") {
		t.Fatalf("len %d, holds 0: %v", c.len(), c.contains("0"))
	}
}

// fakeRuns serves GetRange from memory, counting GETs; while gate is not
// nil each GET waits for it.
type fakeRuns struct {
	objstore.BucketReader
	gets atomic.Int32
	gate chan struct{}
}

func (f *fakeRuns) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	f.gets.Add(1)
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	b := make([]byte, length)
	for i := range b {
		b[i] = byte(off) + byte(i)
	}
	return b, nil
}

func cacheFiles(t *testing.T, dir string) int {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(des)
}

// The run cache keeps its behaviour on the shared lru: concurrent misses of
// one run share a GET, the disk budget holds and evicted runs' files go, a
// damaged file is fetched and replaced, and the metrics say so.
func TestChunkCacheOnLRU(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	m := newMetrics(nil)
	bucket := &fakeRuns{gate: make(chan struct{})}
	c, err := newChunkCache(dir, 300, bucket, m)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	entry := func(pos int64) metadata.IndexEntry {
		return metadata.IndexEntry{Object: "o", Position: pos, Size: 100}
	}

	// Five concurrent readers of one run: one GET.
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if b, err := c.get(t.Context(), entry(0)); err != nil || len(b) != 100 {
				t.Errorf("get: %d bytes, %v", len(b), err)
			}
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(m.cacheRequests.WithLabelValues("shared")) < 4 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(bucket.gate)
	wg.Wait()
	bucket.gate = nil
	if n := bucket.gets.Load(); n != 1 {
		t.Fatalf("%d GETs for one run read 5 times at once", n)
	}
	if _, err := c.get(t.Context(), entry(0)); err != nil {
		t.Fatal(err)
	}
	if hit, miss := testutil.ToFloat64(m.cacheRequests.WithLabelValues("hit")), testutil.ToFloat64(m.cacheRequests.WithLabelValues("miss")); hit != 1 || miss != 1 || bucket.gets.Load() != 1 {
		t.Fatalf("hit %v miss %v gets %d", hit, miss, bucket.gets.Load())
	}

	// Budget 300: the fourth run evicts the least recent and its file.
	for _, pos := range []int64{100, 200} {
		c.get(t.Context(), entry(pos))
	}
	c.get(t.Context(), entry(0)) // 100 is now the least recent
	c.get(t.Context(), entry(300))
	if c.runs.contains(runKey(entry(100))) || !c.runs.contains(runKey(entry(0))) {
		t.Fatal("evicted the wrong run")
	}
	if n := cacheFiles(t, dir); n != 3 {
		t.Fatalf("%d files on disk, want 3", n)
	}
	if g := testutil.ToFloat64(m.cacheBytes); g != 300 {
		t.Fatalf("cache bytes gauge %v, want 300", g)
	}

	// A damaged file is fetched again and replaced; the old file goes.
	r, _ := c.runs.get(runKey(entry(300)))
	if err := os.WriteFile(r.path, []byte("short"), 0o644); err != nil {
		t.Fatal(err)
	}
	gets := bucket.gets.Load()
	b, err := c.get(t.Context(), entry(300))
	if err != nil || len(b) != 100 || b[0] != byte(300%256) || bucket.gets.Load() != gets+1 {
		t.Fatalf("damaged run: %d bytes, %v, %d GETs", len(b), err, bucket.gets.Load()-gets)
	}
	if r2, _ := c.runs.get(runKey(entry(300))); r2.path == r.path {
		t.Fatal("damaged file still indexed")
	}
	if _, err := os.Stat(r.path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("damaged file left behind: %v", err)
	}
	if n := cacheFiles(t, dir); n != 3 || c.runs.bytes() != 300 {
		t.Fatalf("%d files, %d bytes after a replace", n, c.runs.bytes())
	}
}

// flusher.go's retry on the shared loop: a permanentError stops it at once
// and comes back so that commit can errors.As it; a transient one is
// retried with onErr told the attempt; a ctx end wraps ctx.Err().
func TestFlushRetry(t *testing.T) {
	errBoom := errors.New("boom")
	calls := 0
	err := retry(t.Context(), func() error {
		calls++
		return fmt.Errorf("commit: %w", permanentError{errBoom})
	}, func(error, int) { t.Error("onErr called for a permanent error") })
	var pe permanentError
	if !errors.As(err, &pe) || pe.err != errBoom || calls != 1 {
		t.Fatalf("err = %v after %d calls", err, calls)
	}

	var attempts []int
	calls = 0
	err = retry(t.Context(), func() error {
		if calls++; calls < 3 {
			return errBoom
		}
		return nil
	}, func(err error, attempt int) { attempts = append(attempts, attempt) })
	if err != nil || !slices.Equal(attempts, []int{1, 2}) {
		t.Fatalf("err = %v, onErr attempts %v", err, attempts)
	}

	ctx, cancel := context.WithCancel(t.Context())
	err = retry(ctx, func() error { cancel(); return errBoom }, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func BenchmarkLRUGet(b *testing.B) {
	c := newDecodedCache(64 << 20)
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("seg/%08d.log@%d#3", i, i*4096)
		c.put(keys[i], make([]byte, 4096))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.get(keys[i&1023])
		i++
	}
}

func BenchmarkLRUGetParallel(b *testing.B) {
	c := newDecodedCache(64 << 20)
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("seg/%08d.log@%d#3", i, i*4096)
		c.put(keys[i], make([]byte, 4096))
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(1024)
		for pb.Next() {
			c.get(keys[i&1023])
			i++
		}
	})
}

// Puts of new keys into a full cache: every put evicts one value.
func BenchmarkLRUPutEvict(b *testing.B) {
	c := newDecodedCache(1024 * 4096 * 4) // 4096 values of 4 KiB (maxEntry is budget/4)
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = fmt.Sprintf("seg/%08d.log@%d#3", i, i*4096)
	}
	v := make([]byte, 4096)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.put(keys[i&(1<<16-1)], v)
		i++
	}
}

// Puts that replace a cached key's value, with an onEvict (the run cache's
// shape).
func BenchmarkLRUPutReplace(b *testing.B) {
	c := newLRU[string](1<<30, 1<<30, func(r diskRun) int64 { return r.size }, func(string, diskRun) {})
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("o@%d+4096", i*4096)
		c.put(keys[i], diskRun{path: keys[i], size: 4096})
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.put(keys[i&1023], diskRun{path: keys[i&1023], size: 4096})
		i++
	}
}
