package metadata

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
)

// shared is one embedded etcd for the tests that do not need their own;
// each test lives under its own cluster prefix.
var shared *Embedded

func TestMain(m *testing.M) {
	code := run(m)
	os.Exit(code)
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "strata-metadata-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	shared, err = StartEmbedded(ctx, EmbeddedConfig{Dir: dir}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	shared.Close()
	// Every goroutine a Store or an Embedded started must be gone by now
	// (etcd's and gRPC's included: Close waits for them).
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			return 1
		}
	}
	return code
}

var nonName = regexp.MustCompile(`[^a-zA-Z0-9._-]`)

// clusterSeq and clusters make cluster prefixes unique across repeated runs
// of a test in one process (go test -count=N shares the embedded etcd),
// while every Store one run of a test opens shares its prefix.
var (
	clusterSeq atomic.Int64
	clusters   sync.Map // *testing.T -> string
)

// cluster returns the cluster prefix of this run of the test.
func cluster(t *testing.T) string {
	if c, ok := clusters.Load(t); ok {
		return c.(string)
	}
	c, _ := clusters.LoadOrStore(t, fmt.Sprintf("%s_%d", nonName.ReplaceAllString(t.Name(), "_"), clusterSeq.Add(1)))
	return c.(string)
}

// openStore opens a Store on e (shared when nil) under the test's cluster
// and closes it at the end of the test.
func openStore(t *testing.T, e *Embedded, mod func(*Config)) *Store {
	t.Helper()
	if e == nil {
		e = shared
	}
	cfg := Config{Endpoints: e.Endpoints(), Cluster: cluster(t)}
	if mod != nil {
		mod(&cfg)
	}
	s, err := Open(testCtx(t), cfg, nil, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openStoreReg is openStore with a metrics registry.
func openStoreReg(t *testing.T, e *Embedded, mod func(*Config), reg prometheus.Registerer) *Store {
	t.Helper()
	cfg := Config{Endpoints: e.Endpoints(), Cluster: cluster(t)}
	if mod != nil {
		mod(&cfg)
	}
	s, err := Open(testCtx(t), cfg, nil, reg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// startEmbedded starts a private etcd in a temp dir.
func startEmbedded(t *testing.T, dir string, maxTxnOps uint) *Embedded {
	t.Helper()
	e, err := StartEmbedded(testCtx(t), EmbeddedConfig{Dir: dir, MaxTxnOps: maxTxnOps}, nil)
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// rawClient is a plain etcd client for looking at keys behind the Store.
func rawClient(t *testing.T, e *Embedded) *clientv3.Client {
	t.Helper()
	if e == nil {
		e = shared
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: e.Endpoints(), DialTimeout: 5 * time.Second, Logger: newZapLogger(nil, 0)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
