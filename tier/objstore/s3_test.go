package objstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/strata-io/strata/tier/objstore"
	"github.com/strata-io/strata/tier/objstore/miniotest"
	"github.com/strata-io/strata/tier/objstore/objstoretest"
)

// s3Options are the credentials of srv plus a retry policy quick enough for
// tests.
func s3Options(srv *miniotest.Server) objstore.Options {
	return objstore.Options{
		AccessKeyID:     srv.AccessKey,
		SecretAccessKey: srv.SecretKey,
		Retry: objstore.RetryConfig{
			MaxAttempts:    5,
			BaseDelay:      5 * time.Millisecond,
			MaxDelay:       50 * time.Millisecond,
			AttemptTimeout: 30 * time.Second,
		},
	}
}

func openS3(t *testing.T, rawURL string, opts objstore.Options, logger *slog.Logger) objstore.Bucket {
	t.Helper()
	b, err := objstore.Open(t.Context(), rawURL, opts, logger)
	if err != nil {
		t.Fatalf("Open(%q): %v", rawURL, err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestS3Acceptance(t *testing.T) {
	srv := miniotest.Start(t)
	var n atomic.Int64

	// Many tenants in one bucket, each under its own prefix.
	t.Run("prefix", func(t *testing.T) {
		shared := srv.Bucket(t, "shared")
		objstoretest.AcceptanceTest(t, func(t *testing.T) objstore.Bucket {
			return openS3(t, srv.URL(shared, fmt.Sprintf("tenant-%d/strata", n.Add(1))), s3Options(srv), nil)
		})
	})
	// A bucket of its own, keys at the root.
	t.Run("bucket root", func(t *testing.T) {
		objstoretest.AcceptanceTest(t, func(t *testing.T) objstore.Bucket {
			bucket := srv.Bucket(t, fmt.Sprintf("root-%d", n.Add(1)))
			return openS3(t, srv.URL(bucket, ""), s3Options(srv), nil)
		})
	})
}

func TestS3OpenBucket(t *testing.T) {
	srv := miniotest.Start(t)
	ctx := t.Context()
	mc := srv.Client(t)

	// Missing, not asked to create: a clear error, and nothing created.
	_, err := objstore.Open(ctx, srv.URL("not-there", "p"), s3Options(srv), nil)
	if !errors.Is(err, objstore.ErrBucketNotExist) {
		t.Fatalf("Open of a missing bucket: error = %v, want ErrBucketNotExist", err)
	}
	if want := `objstore: bucket "not-there" does not exist (use --object-store-create-bucket)`; err.Error() != want {
		t.Fatalf("error = %q, want %q", err, want)
	}
	if ok, err := mc.BucketExists(ctx, "not-there"); err != nil || ok {
		t.Fatalf("BucketExists(not-there) = %v, %v after a failed Open", ok, err)
	}

	// Missing, asked to create: created, and usable.
	opts := s3Options(srv)
	opts.CreateBucket = true
	b := openS3(t, srv.URL("made-by-open", ""), opts, nil)
	if ok, err := mc.BucketExists(ctx, "made-by-open"); err != nil || !ok {
		t.Fatalf("BucketExists(made-by-open) = %v, %v; want true", ok, err)
	}
	if err := b.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	// Existing, asked to create: fine (a second node starting up).
	openS3(t, srv.URL("made-by-open", ""), opts, nil)

	// Wrong credentials: an error, but not "does not exist".
	bad := s3Options(srv)
	bad.SecretAccessKey = "wrong-secret-key"
	_, err = objstore.Open(ctx, srv.URL("made-by-open", ""), bad, nil)
	if err == nil || errors.Is(err, objstore.ErrBucketNotExist) {
		t.Fatalf("Open with a wrong secret: error = %v, want an access error", err)
	}

	// Credentials from the environment when Options has none.
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	envOpts := s3Options(srv)
	envOpts.AccessKeyID, envOpts.SecretAccessKey = "", ""
	eb := openS3(t, srv.URL("made-by-open", ""), envOpts, nil)
	if got, err := eb.Get(ctx, "k"); err != nil || string(got) != "v" {
		t.Fatalf("Get with env credentials = %q, %v", got, err)
	}
}

// What Strata writes is a plain S3 object at prefix/key, readable by any
// other S3 client, and objects other clients write are visible to Strata.
func TestS3KeyLayout(t *testing.T) {
	srv := miniotest.Start(t)
	bucket := srv.Bucket(t, "layout")
	b := openS3(t, srv.URL(bucket, "/cluster-a/"), s3Options(srv), nil)
	ctx := t.Context()
	mc := srv.Client(t)

	if err := b.Put(ctx, "topic/0/seg", []byte("segment bytes")); err != nil {
		t.Fatal(err)
	}
	obj, err := mc.GetObject(ctx, bucket, "cluster-a/topic/0/seg", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(obj)
	obj.Close()
	if err != nil || string(got) != "segment bytes" {
		t.Fatalf("minio-go read %q, %v; want \"segment bytes\"", got, err)
	}

	if _, err := mc.PutObject(ctx, bucket, "cluster-a/from-minio-go", strings.NewReader("hi"), 2, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := mc.PutObject(ctx, bucket, "cluster-b/not-ours", strings.NewReader("no"), 2, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := b.List(ctx, "", func(a objstore.Attrs) error { keys = append(keys, a.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := []string{"from-minio-go", "topic/0/seg"}; fmt.Sprint(keys) != fmt.Sprint(want) {
		t.Fatalf("List = %q, want %q (only this prefix, prefix stripped)", keys, want)
	}
}

// A List longer than one ListObjectsV2 page (1000 keys) is complete and in
// order.
func TestS3ListPaginates(t *testing.T) {
	srv := miniotest.Start(t)
	b := openS3(t, srv.URL(srv.Bucket(t, "pages"), "p"), s3Options(srv), nil)
	ctx := t.Context()
	const n = 1234
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				if err := b.Put(ctx, fmt.Sprintf("k/%05d", i), nil); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	i := 0
	err := b.List(ctx, "k/", func(a objstore.Attrs) error {
		if want := fmt.Sprintf("k/%05d", i); a.Key != want {
			return fmt.Errorf("List key %d = %q, want %q", i, a.Key, want)
		}
		i++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if i != n {
		t.Fatalf("List returned %d keys, want %d", i, n)
	}
}

// fault is one injected failure: an S3 error answer, or a connection closed
// without an answer.
type fault struct {
	status int
	code   string
	reset  bool
}

// faultProxy sits between the S3 client and MinIO on 127.0.0.1 and fails
// the requests it is told to, passing the rest through. SigV4 signs the Host
// header, which the proxy keeps, so MinIO accepts the forwarded requests.
type faultProxy struct {
	URL       string
	proxy     *httputil.ReverseProxy
	mu        sync.Mutex
	next      []fault // failures for the next requests, in order
	always    *fault  // failure for every request, if set
	requests  atomic.Int64
	forwarded atomic.Int64
	// delay is added latency per request, so concurrent requests overlap.
	delay       atomic.Int64 // nanoseconds
	inflight    atomic.Int64
	maxInflight atomic.Int64
}

func startFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	p := &faultProxy{proxy: httputil.NewSingleHostReverseProxy(u)}
	p.proxy.Transport = tr
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: p}
	go srv.Serve(l)
	t.Cleanup(func() {
		srv.Close()
		tr.CloseIdleConnections()
	})
	p.URL = "http://" + l.Addr().String()
	return p
}

func (p *faultProxy) inject(next []fault, always *fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next, p.always = next, always
	p.requests.Store(0)
	p.forwarded.Store(0)
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	n := p.inflight.Add(1)
	defer p.inflight.Add(-1)
	for {
		m := p.maxInflight.Load()
		if n <= m || p.maxInflight.CompareAndSwap(m, n) {
			break
		}
	}
	if d := p.delay.Load(); d > 0 {
		time.Sleep(time.Duration(d)) // injected latency, not synchronisation
	}
	p.mu.Lock()
	var f *fault
	if len(p.next) > 0 {
		f = &p.next[0]
		p.next = p.next[1:]
	} else {
		f = p.always
	}
	p.mu.Unlock()
	if f == nil {
		p.forwarded.Add(1)
		p.proxy.ServeHTTP(w, r)
		return
	}
	io.Copy(io.Discard, r.Body)
	if f.reset {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			if tc, ok := conn.(*net.TCPConn); ok {
				tc.SetLinger(0) // RST, not FIN
			}
			conn.Close()
		}
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	if r.Method != http.MethodHead {
		w.WriteHeader(f.status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected</Message><RequestId>fault</RequestId></Error>`, f.code)
		return
	}
	w.WriteHeader(f.status)
}

func repeat(f fault, n int) []fault {
	out := make([]fault, n)
	for i := range out {
		out[i] = f
	}
	return out
}

func TestS3RetriesInjectedFaults(t *testing.T) {
	srv := miniotest.Start(t)
	bucket := srv.Bucket(t, "faults")
	proxy := startFaultProxy(t, srv.Endpoint)
	proxied := strings.Replace(srv.URL(bucket, "f"), url.QueryEscape(srv.Endpoint), url.QueryEscape(proxy.URL), 1)
	opts := s3Options(srv) // MaxAttempts 5
	b := openS3(t, proxied, opts, nil)
	ctx := t.Context()
	if err := b.Put(ctx, "base", []byte("base data")); err != nil {
		t.Fatal(err)
	}

	slowDown := fault{status: 503, code: "SlowDown"}
	internal := fault{status: 500, code: "InternalError"}
	throttled := fault{status: 429, code: "TooManyRequests"}
	badGateway := fault{status: 502, code: "BadGateway"}
	reset := fault{reset: true}
	denied := fault{status: 403, code: "AccessDenied"}

	ops := map[string]func(ctx context.Context) error{
		"put": func(ctx context.Context) error { return b.Put(ctx, "k", []byte("payload")) },
		"get": func(ctx context.Context) error {
			got, err := b.Get(ctx, "base")
			if err == nil && string(got) != "base data" {
				err = fmt.Errorf("got %q", got)
			}
			return err
		},
		"get range": func(ctx context.Context) error {
			got, err := b.GetRange(ctx, "base", 5, 4)
			if err == nil && string(got) != "data" {
				err = fmt.Errorf("got %q", got)
			}
			return err
		},
		"stat": func(ctx context.Context) error { _, err := b.Stat(ctx, "base"); return err },
		"list": func(ctx context.Context) error {
			return b.List(ctx, "", func(objstore.Attrs) error { return nil })
		},
		"delete": func(ctx context.Context) error { return b.Delete(ctx, "gone") },
	}
	tests := []struct {
		name         string
		op           string
		next         []fault
		always       *fault
		wantErr      bool
		wantRequests int64
		// atLeast: Go's transport may itself replay an idempotent request
		// that died on a reused connection, so resets can add requests.
		atLeast bool
	}{
		{"put after 3x SlowDown", "put", repeat(slowDown, 3), nil, false, 4, false},
		{"get after 4x SlowDown", "get", repeat(slowDown, 4), nil, false, 5, false},
		{"get range after 500s", "get range", repeat(internal, 2), nil, false, 3, false},
		{"stat after 502", "stat", []fault{badGateway}, nil, false, 2, false},
		{"list after 429s", "list", repeat(throttled, 2), nil, false, 3, false},
		{"delete after mixed", "delete", []fault{slowDown, internal, throttled}, nil, false, 4, false},
		{"put after connection resets", "put", repeat(reset, 2), nil, false, 3, true},
		{"get after connection resets", "get", repeat(reset, 2), nil, false, 3, true},
		{"put gives up after MaxAttempts", "put", nil, &slowDown, true, 5, false},
		{"get gives up after MaxAttempts", "get", nil, &internal, true, 5, false},
		{"access denied is not retried", "get", []fault{denied}, nil, true, 1, false},
		{"access denied put is not retried", "put", []fault{denied}, nil, true, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proxy.inject(tt.next, tt.always)
			defer proxy.inject(nil, nil)
			start := time.Now()
			err := ops[tt.op](ctx)
			if tt.wantErr != (err != nil) {
				t.Fatalf("%s: error = %v, want error %v", tt.op, err, tt.wantErr)
			}
			if errors.Is(err, objstore.ErrNotFound) {
				t.Fatalf("%s: injected failure reported as ErrNotFound: %v", tt.op, err)
			}
			if got := proxy.requests.Load(); got != tt.wantRequests && !(tt.atLeast && got > tt.wantRequests) {
				t.Fatalf("%s made %d requests, want %d (err %v)", tt.op, got, tt.wantRequests, err)
			}
			// 5 attempts with delays capped at 50ms stay well under 5s.
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("%s took %v, retry budget not bounded", tt.op, d)
			}
		})
	}
	// The object written through faults is intact.
	if got, err := b.Get(ctx, "k"); err != nil || string(got) != "payload" {
		t.Fatalf("Get(k) = %q, %v", got, err)
	}
}

// Options.MaxConcurrency bounds the requests in flight, however many
// goroutines call at once.
func TestS3ConcurrencyBound(t *testing.T) {
	srv := miniotest.Start(t)
	bucket := srv.Bucket(t, "bounded")
	proxy := startFaultProxy(t, srv.Endpoint)
	proxied := strings.Replace(srv.URL(bucket, ""), url.QueryEscape(srv.Endpoint), url.QueryEscape(proxy.URL), 1)
	opts := s3Options(srv)
	opts.MaxConcurrency = 3
	b := openS3(t, proxied, opts, nil)
	proxy.delay.Store(int64(20 * time.Millisecond))
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Go(func() {
			for i := range 4 {
				if err := b.Put(ctx, fmt.Sprintf("w%02d/%d", w, i), []byte("x")); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := proxy.maxInflight.Load(); got != 3 {
		t.Fatalf("max requests in flight = %d, want exactly MaxConcurrency (3)", got)
	}
}

// retryCounter counts the retry log lines, so a test can wait until a call
// is known to be riding out an outage.
type retryCounter struct{ n atomic.Int64 }

func (c *retryCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *retryCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "objstore: retrying" {
		c.n.Add(1)
	}
	return nil
}
func (c *retryCounter) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *retryCounter) WithGroup(string) slog.Handler      { return c }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A store that goes away (killed) or hangs (paused) is ridden out by
// retries, and calls complete once it is back.
func TestS3Outage(t *testing.T) {
	srv := miniotest.Start(t)
	bucket := srv.Bucket(t, "outage")
	counter := &retryCounter{}
	opts := s3Options(srv)
	opts.Retry = objstore.RetryConfig{
		MaxAttempts:    1000,
		BaseDelay:      10 * time.Millisecond,
		MaxDelay:       200 * time.Millisecond,
		AttemptTimeout: time.Second,
	}
	b := openS3(t, srv.URL(bucket, "o"), opts, slog.New(counter))
	ctx := t.Context()
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	if err := b.Put(ctx, "before", data); err != nil {
		t.Fatal(err)
	}

	for _, mode := range []string{"killed", "paused"} {
		t.Run(mode, func(t *testing.T) {
			switch mode {
			case "killed":
				srv.Stop(t)
			case "paused":
				srv.Pause(t)
			}
			base := counter.n.Load()
			key := "during-" + mode
			done := make(chan error, 1)
			go func() { done <- b.Put(ctx, key, data) }()
			waitFor(t, "the Put to retry twice", func() bool { return counter.n.Load() >= base+2 })
			select {
			case err := <-done:
				t.Fatalf("Put returned %v while the store was %s", err, mode)
			default:
			}
			switch mode {
			case "killed":
				srv.Restart(t)
			case "paused":
				srv.Resume(t)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Put after the store came back: %v", err)
				}
			case <-time.After(60 * time.Second):
				t.Fatal("Put did not complete within 60s of the store coming back")
			}
			for _, k := range []string{"before", key} {
				if got, err := b.Get(ctx, k); err != nil || !bytes.Equal(got, data) {
					t.Fatalf("Get(%q) after outage = %d bytes, %v", k, len(got), err)
				}
			}
		})
	}

	// With the store down, cancellation stops a retrying call at once, and a
	// deadline bounds it.
	t.Run("cancel while down", func(t *testing.T) {
		srv.Stop(t)
		defer srv.Restart(t)
		cctx, cancel := context.WithCancel(ctx)
		base := counter.n.Load()
		done := make(chan error, 1)
		go func() { _, err := b.Get(cctx, "before"); done <- err }()
		waitFor(t, "the Get to retry", func() bool { return counter.n.Load() > base })
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Get after cancel: error = %v, want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Get did not return within 5s of cancel")
		}

		dctx, dcancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer dcancel()
		start := time.Now()
		err := b.Put(dctx, "never", data)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Put with a deadline while down: error = %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("Put with a 300ms deadline took %v", d)
		}
	})
}
