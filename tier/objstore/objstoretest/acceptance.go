package objstoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/strata-io/strata/tier/objstore"
)

// promptly is how long a call with an already-cancelled context may take.
const promptly = 2 * time.Second

// AcceptanceTest runs the Bucket contract against an implementation.
// newBucket is called once per subtest and must return an empty bucket that
// stays usable until the test ends (register its cleanup with t.Cleanup).
func AcceptanceTest(t *testing.T, newBucket func(t *testing.T) objstore.Bucket) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b objstore.Bucket)
	}{
		{"PutGetRoundTrip", testPutGet},
		{"Overwrite", testOverwrite},
		{"EmptyObject", testEmptyObject},
		{"LargeObject", testLargeObject},
		{"GetRange", testGetRange},
		{"Stat", testStat},
		{"NotFound", testNotFound},
		{"List", testList},
		{"ListStopsOnCallbackError", testListCallbackError},
		{"Delete", testDelete},
		{"InvalidKeys", testInvalidKeys},
		{"Concurrent", testConcurrent},
		{"CancelledContext", testCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBucket(t)
			tt.fn(t, b)
		})
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	buf := make([]byte, n)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	return buf
}

func mustPut(t *testing.T, b objstore.Bucket, key string, data []byte) {
	t.Helper()
	if err := b.Put(ctxFor(t), key, data); err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", key, len(data), err)
	}
}

func mustGet(t *testing.T, b objstore.Bucket, key string, want []byte) {
	t.Helper()
	got, err := b.Get(ctxFor(t), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %d bytes %.16x..., want %d bytes %.16x...", key, len(got), got, len(want), want)
	}
}

func testPutGet(t *testing.T, b objstore.Bucket) {
	for i, key := range []string{"a", "dir/obj", "deep/er/path/obj.seg", "with space and ünïcode", "x=1,y=2"} {
		data := randBytes(uint64(i), 1000+i)
		mustPut(t, b, key, data)
		mustGet(t, b, key, data)
	}
}

func testOverwrite(t *testing.T, b objstore.Bucket) {
	mustPut(t, b, "k", []byte("first version, longer"))
	mustPut(t, b, "k", []byte("second"))
	mustGet(t, b, "k", []byte("second"))
	a, err := b.Stat(ctxFor(t), "k")
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if a.Size != int64(len("second")) {
		t.Fatalf("Stat size after overwrite = %d, want %d", a.Size, len("second"))
	}
	n := 0
	if err := b.List(ctxFor(t), "", func(objstore.Attrs) error { n++; return nil }); err != nil {
		t.Fatalf("List: %v", err)
	}
	if n != 1 {
		t.Fatalf("List after overwrite saw %d objects, want 1", n)
	}
}

func testEmptyObject(t *testing.T, b objstore.Bucket) {
	mustPut(t, b, "empty", nil)
	mustGet(t, b, "empty", []byte{})
	a, err := b.Stat(ctxFor(t), "empty")
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if a.Size != 0 || a.Key != "empty" {
		t.Fatalf("Stat = %+v, want key empty size 0", a)
	}
	got, err := b.GetRange(ctxFor(t), "empty", 0, 0)
	if err != nil || len(got) != 0 {
		t.Fatalf("GetRange(empty, 0, 0) = %d bytes, %v; want 0 bytes, nil", len(got), err)
	}
	if _, err := b.GetRange(ctxFor(t), "empty", 0, 1); !errors.Is(err, objstore.ErrInvalidRange) {
		t.Fatalf("GetRange(empty, 0, 1) error = %v, want ErrInvalidRange", err)
	}
}

func testLargeObject(t *testing.T, b objstore.Bucket) {
	const size = 8 << 20
	data := randBytes(8, size)
	mustPut(t, b, "large/obj", data)
	mustGet(t, b, "large/obj", data)
	// A range spanning what would be any internal part boundary.
	got, err := b.GetRange(ctxFor(t), "large/obj", 5<<20-3, 1<<20+7)
	if err != nil {
		t.Fatalf("GetRange: %v", err)
	}
	if !bytes.Equal(got, data[5<<20-3:5<<20-3+1<<20+7]) {
		t.Fatal("GetRange of large object returned wrong bytes")
	}
	a, err := b.Stat(ctxFor(t), "large/obj")
	if err != nil || a.Size != size {
		t.Fatalf("Stat = %+v, %v; want size %d", a, err, size)
	}
}

func testGetRange(t *testing.T, b objstore.Bucket) {
	data := randBytes(3, 1000)
	mustPut(t, b, "r", data)
	tests := []struct {
		name        string
		off, length int64
		wantErr     bool
	}{
		{"whole", 0, 1000, false},
		{"head", 0, 10, false},
		{"middle", 100, 250, false},
		{"to end", 900, 100, false},
		{"last byte", 999, 1, false},
		{"zero length inside", 500, 0, false},
		{"zero length at end", 1000, 0, false},
		{"past end", 900, 101, true},
		{"starts at end", 1000, 1, true},
		{"starts past end", 2000, 10, true},
		{"zero length past end", 1001, 0, true},
		{"negative offset", -1, 10, true},
		{"negative length", 0, -1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := b.GetRange(ctxFor(t), "r", tt.off, tt.length)
			if tt.wantErr {
				if !errors.Is(err, objstore.ErrInvalidRange) {
					t.Fatalf("GetRange(%d, %d) error = %v, want ErrInvalidRange", tt.off, tt.length, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("GetRange(%d, %d): %v", tt.off, tt.length, err)
			}
			if want := data[tt.off : tt.off+tt.length]; !bytes.Equal(got, want) {
				t.Fatalf("GetRange(%d, %d) = %d bytes, want %d bytes %x", tt.off, tt.length, len(got), len(want), want)
			}
		})
	}
}

func testStat(t *testing.T, b objstore.Bucket) {
	before := time.Now().Add(-time.Minute)
	mustPut(t, b, "s/obj", make([]byte, 4321))
	a, err := b.Stat(ctxFor(t), "s/obj")
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if a.Key != "s/obj" || a.Size != 4321 {
		t.Fatalf("Stat = %+v, want key s/obj size 4321", a)
	}
	if a.ModTime.Before(before) || a.ModTime.After(time.Now().Add(time.Minute)) {
		t.Fatalf("Stat ModTime %v not near now", a.ModTime)
	}
	// A key prefix is not an object.
	if _, err := b.Stat(ctxFor(t), "s"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Stat of a key prefix: error = %v, want ErrNotFound", err)
	}
}

func testNotFound(t *testing.T, b objstore.Bucket) {
	mustPut(t, b, "present/x", []byte("x"))
	for _, key := range []string{"missing", "present/missing", "missing/deeper/key", "present/x/below-an-object"} {
		ctx := ctxFor(t)
		if _, err := b.Get(ctx, key); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("Get(%q) error = %v, want ErrNotFound", key, err)
		}
		if _, err := b.GetRange(ctx, key, 0, 1); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("GetRange(%q) error = %v, want ErrNotFound", key, err)
		}
		if _, err := b.GetRange(ctx, key, 0, 0); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("GetRange(%q, 0, 0) error = %v, want ErrNotFound", key, err)
		}
		if _, err := b.Stat(ctx, key); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("Stat(%q) error = %v, want ErrNotFound", key, err)
		}
	}
}

func listKeys(t *testing.T, b objstore.Bucket, prefix string) []string {
	t.Helper()
	keys := []string{}
	err := b.List(ctxFor(t), prefix, func(a objstore.Attrs) error {
		keys = append(keys, a.Key)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return keys
}

func testList(t *testing.T, b objstore.Bucket) {
	// Chosen so that directory order and key order differ: "a-c" < "a/b"
	// because '-' < '/', and "a0" > "a/z" because '0' > '/'.
	keys := []string{"a/b", "a/z", "a-c", "a0", "a.b", "ab/c/d", "b", "c/d/e/f", "c/d/e0", "topic-0/00000000000000000000.seg", "topic-0/00000000000000000100.seg", "topic-1/00000000000000000000.seg"}
	sizes := map[string]int64{}
	for i, k := range slices.Backward(keys) {
		data := make([]byte, i*3)
		mustPut(t, b, k, data)
		sizes[k] = int64(len(data))
	}
	sorted := slices.Sorted(slices.Values(keys))

	tests := []struct {
		prefix string
		want   []string
	}{
		{"", sorted},
		{"a", []string{"a-c", "a.b", "a/b", "a/z", "a0", "ab/c/d"}},
		{"a/", []string{"a/b", "a/z"}},
		{"a/b", []string{"a/b"}},
		{"ab/c", []string{"ab/c/d"}},
		{"c/d/e", []string{"c/d/e/f", "c/d/e0"}},
		{"c/d/e/", []string{"c/d/e/f"}},
		{"topic-0/", []string{"topic-0/00000000000000000000.seg", "topic-0/00000000000000000100.seg"}},
		{"topic-", []string{"topic-0/00000000000000000000.seg", "topic-0/00000000000000000100.seg", "topic-1/00000000000000000000.seg"}},
		{"nothing", []string{}},
		{"b/", []string{}},
		{"zzz", []string{}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("prefix=%q", tt.prefix), func(t *testing.T) {
			got := listKeys(t, b, tt.prefix)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("List(%q) = %q, want %q", tt.prefix, got, tt.want)
			}
		})
	}

	err := b.List(ctxFor(t), "", func(a objstore.Attrs) error {
		if a.Size != sizes[a.Key] {
			return fmt.Errorf("List gave %q size %d, want %d", a.Key, a.Size, sizes[a.Key])
		}
		if a.ModTime.IsZero() {
			return fmt.Errorf("List gave %q a zero ModTime", a.Key)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testListCallbackError(t *testing.T, b objstore.Bucket) {
	for _, k := range []string{"1", "2", "3"} {
		mustPut(t, b, k, []byte(k))
	}
	stop := errors.New("stop here")
	var seen []string
	err := b.List(ctxFor(t), "", func(a objstore.Attrs) error {
		seen = append(seen, a.Key)
		if a.Key == "2" {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("List error = %v, want the callback's error", err)
	}
	if !slices.Equal(seen, []string{"1", "2"}) {
		t.Fatalf("List called back for %q after the error, want [1 2]", seen)
	}
}

func testDelete(t *testing.T, b objstore.Bucket) {
	mustPut(t, b, "d/one", []byte("1"))
	mustPut(t, b, "d/two", []byte("2"))
	ctx := ctxFor(t)
	if err := b.Delete(ctx, "d/one"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := b.Get(ctx, "d/one"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Get after Delete: error = %v, want ErrNotFound", err)
	}
	if got := listKeys(t, b, ""); !slices.Equal(got, []string{"d/two"}) {
		t.Fatalf("List after Delete = %q, want [d/two]", got)
	}
	for _, key := range []string{"d/one", "never-existed", "no/such/dir/key", "d"} {
		if err := b.Delete(ctx, key); err != nil {
			t.Fatalf("Delete(%q) of a missing key: %v, want nil", key, err)
		}
	}
	mustGet(t, b, "d/two", []byte("2"))
	if err := b.Delete(ctx, "d/two"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if got := listKeys(t, b, ""); len(got) != 0 {
		t.Fatalf("List after deleting everything = %q, want nothing", got)
	}
	// The prefix is usable again after everything under it was deleted.
	mustPut(t, b, "d/three", []byte("3"))
	mustGet(t, b, "d/three", []byte("3"))
}

func testInvalidKeys(t *testing.T, b objstore.Bucket) {
	ctx := ctxFor(t)
	for _, key := range []string{"", "/abs", "a/../b", "..", "../up", "a/..", "./a", "a//b", "a/", "nul\x00byte"} {
		if err := b.Put(ctx, key, []byte("x")); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("Put(%q) error = %v, want ErrInvalidKey", key, err)
		}
		if _, err := b.Get(ctx, key); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("Get(%q) error = %v, want ErrInvalidKey", key, err)
		}
		if _, err := b.Stat(ctx, key); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("Stat(%q) error = %v, want ErrInvalidKey", key, err)
		}
		if err := b.Delete(ctx, key); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("Delete(%q) error = %v, want ErrInvalidKey", key, err)
		}
	}
	if got := listKeys(t, b, ""); len(got) != 0 {
		t.Fatalf("List after rejected Puts = %q, want nothing", got)
	}
}

func testConcurrent(t *testing.T, b objstore.Bucket) {
	const workers, perWorker = 16, 8
	ctx := ctxFor(t)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				key := fmt.Sprintf("c/%02d/%02d", w, i)
				data := randBytes(uint64(w*100+i), 1000+w*10+i)
				if err := b.Put(ctx, key, data); err != nil {
					errs <- fmt.Errorf("Put(%q): %w", key, err)
					return
				}
				// Everyone also overwrites and reads one shared key.
				if err := b.Put(ctx, "c/shared", data[:100]); err != nil {
					errs <- fmt.Errorf("Put(c/shared): %w", err)
					return
				}
				got, err := b.Get(ctx, key)
				if err != nil {
					errs <- fmt.Errorf("Get(%q): %w", key, err)
					return
				}
				if !bytes.Equal(got, data) {
					errs <- fmt.Errorf("Get(%q) returned wrong bytes", key)
					return
				}
				if shared, err := b.Get(ctx, "c/shared"); err != nil || len(shared) != 100 {
					errs <- fmt.Errorf("Get(c/shared) = %d bytes, %v; want 100 bytes (a whole object)", len(shared), err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := listKeys(t, b, "c/"); len(got) != workers*perWorker+1 {
		t.Fatalf("List after concurrent Puts saw %d keys, want %d", len(got), workers*perWorker+1)
	}
}

func testCancelled(t *testing.T, b objstore.Bucket) {
	mustPut(t, b, "k", []byte("v"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	calls := []struct {
		name string
		fn   func() error
	}{
		{"Put", func() error { return b.Put(ctx, "new", []byte("v")) }},
		{"Get", func() error { _, err := b.Get(ctx, "k"); return err }},
		{"GetRange", func() error { _, err := b.GetRange(ctx, "k", 0, 1); return err }},
		{"Stat", func() error { _, err := b.Stat(ctx, "k"); return err }},
		{"List", func() error { return b.List(ctx, "", func(objstore.Attrs) error { return nil }) }},
		{"Delete", func() error { return b.Delete(ctx, "k") }},
	}
	for _, c := range calls {
		start := time.Now()
		err := c.fn()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled ctx: error = %v, want context.Canceled", c.name, err)
		}
		if d := time.Since(start); d > promptly {
			t.Errorf("%s with a cancelled ctx took %v, want under %v", c.name, d, promptly)
		}
	}
	// Nothing the cancelled calls did may have taken effect.
	mustGet(t, b, "k", []byte("v"))
	if _, err := b.Stat(ctxFor(t), "new"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Stat(new) after a cancelled Put: error = %v, want ErrNotFound", err)
	}

	// Cancellation while calls are in flight: a bounded stream of 1 MiB
	// Puts, cancelled shortly after it starts, must stop promptly.
	ctx2, cancel2 := context.WithCancel(t.Context())
	data := randBytes(9, 1<<20)
	done := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		close(started)
		for i := range 1000 {
			if err := b.Put(ctx2, fmt.Sprintf("inflight/%04d", i), data); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	<-started
	cancel2()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("in-flight Puts after cancel: error = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("in-flight Puts did not stop within 10s of cancel")
	}
}
