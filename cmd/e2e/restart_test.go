package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-io/strata/metadata"
)

// strataBin is the strata binary TestMain builds once for the subprocess
// tests; strataBuildErr says why it could not (those tests then fail with it
// and every other test still runs).
var (
	strataBin      string
	strataBuildErr error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "strata-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir:", err)
		os.Exit(2)
	}
	strataBin = filepath.Join(dir, "strata")
	build := exec.Command("go", "build", "-o", strataBin, "github.com/strata-io/strata/cmd/strata")
	if out, err := build.CombinedOutput(); err != nil {
		strataBuildErr = fmt.Errorf("go build ./cmd/strata: %v\n%s", err, out)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// serveArgs is one `strata serve` invocation.
type serveArgs struct {
	dataDir     string
	etcd        []string // empty: the node's own embedded etcd under dataDir
	objectStore string   // empty: file://<dataDir>/objects
	partitions  int
	extra       []string // more flags, e.g. --node-id
}

// strataProc is a running `strata serve` subprocess.
type strataProc struct {
	args      serveArgs
	cmd       *exec.Cmd
	kafkaAddr string
	httpAddr  string
	log       *tailBuffer
	done      chan struct{} // closed when the process has exited
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago. A restarted node gets the same addresses, as a real one would.
func freeAddr(t *testing.T) string {
	t.Helper()
	// The kernel may hand the port of a listener just closed out again:
	// two calls in a row (a node's Kafka and HTTP addresses) must not
	// return the same address, so addresses given out are remembered.
	handedOutMu.Lock()
	defer handedOutMu.Unlock()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if !handedOut[addr] {
			handedOut[addr] = true
			return addr
		}
	}
	t.Fatal("no free port not handed out before")
	return ""
}

var (
	handedOutMu sync.Mutex
	handedOut   = map[string]bool{}
)

// startStrata runs `strata serve` with a and the given listen addresses and
// waits until /readyz answers 200. The process is killed when the test ends.
func startStrata(t *testing.T, a serveArgs, kafkaAddr, httpAddr string) *strataProc {
	t.Helper()
	if strataBuildErr != nil {
		t.Fatal(strataBuildErr)
	}
	args := []string{"serve",
		"--data-dir", a.dataDir,
		"--kafka-addr", kafkaAddr,
		"--http-addr", httpAddr,
		"--flush-interval", "10ms",
		"--default-partitions", fmt.Sprint(a.partitions),
		"--auto-create-topics=true",
		"--log-level", "debug",
		"--flight-addr", "", // several nodes per test must not share its port
	}
	if len(a.etcd) > 0 {
		args = append(args, "--etcd-endpoints", strings.Join(a.etcd, ","))
	}
	if a.objectStore != "" {
		args = append(args, "--object-store", a.objectStore)
	}
	args = append(args, a.extra...)
	p := &strataProc{
		args:      a,
		cmd:       exec.Command(strataBin, args...),
		kafkaAddr: kafkaAddr,
		httpAddr:  httpAddr,
		log:       &tailBuffer{max: 256 << 10},
		done:      make(chan struct{}),
	}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	// No STRATA_* variable from the environment may change the node under
	// test (the CLI reads them as flag defaults).
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STRATA_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", strataBin, err)
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill(t)
		if t.Failed() {
			t.Logf("strata serve %s (pid %d) log tail:\n%s", strings.Join(args[1:], " "), p.cmd.Process.Pid, p.log.String())
		}
	})
	p.waitReady(t)
	return p
}

// waitReady polls /readyz until 200, failing early if the process exits.
func (p *strataProc) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	hc := &http.Client{Timeout: time.Second}
	url := "http://" + p.httpAddr + "/readyz"
	var last string
	for time.Now().Before(deadline) {
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-p.done:
			t.Fatalf("strata serve exited before it was ready (%v); log:\n%s", p.cmd.ProcessState, p.log.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("strata serve not ready after 90s (last /readyz: %s); log:\n%s", last, p.log.String())
}

// restart starts the node again with the same flags and addresses (after
// kill), and waits until it is ready.
func (p *strataProc) restart(t *testing.T) *strataProc {
	t.Helper()
	return startStrata(t, p.args, p.kafkaAddr, p.httpAddr)
}

// kill sends SIGKILL (no graceful shutdown, no final flush) and waits for
// the process to be gone.
func (p *strataProc) kill(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("kill -9 pid %d: %v", p.cmd.Process.Pid, err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Errorf("pid %d still running 30s after SIGKILL", p.cmd.Process.Pid)
	}
}

// TestRestartSameDataDir kills a node with kill -9 while a producer is
// mid-stream and restarts it on the same data dir (its embedded etcd and
// object store live there): every acknowledged record is served, new
// produces continue the offsets, nothing is duplicated.
func TestRestartSameDataDir(t *testing.T) {
	dir := t.TempDir()
	a := serveArgs{dataDir: dir, partitions: 3}
	runRestart(t, a, a)
}

// TestRestartEmptyDataDir keeps etcd (an embedded server the test runs) and
// the object store (a directory of its own) outside the node, kills the node
// with kill -9 and starts it again on a new, empty data dir: the node is
// stateless, so every acknowledged record is still served.
func TestRestartEmptyDataDir(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	etcd, err := metadata.StartEmbedded(ctx, metadata.EmbeddedConfig{Dir: t.TempDir()}, nil)
	if err != nil {
		t.Fatalf("start embedded etcd: %v", err)
	}
	t.Cleanup(func() {
		if err := etcd.Close(); err != nil {
			t.Errorf("close embedded etcd: %v", err)
		}
	})
	store := "file://" + t.TempDir()
	first := serveArgs{dataDir: t.TempDir(), etcd: etcd.Endpoints(), objectStore: store, partitions: 3}
	second := first
	second.dataDir = t.TempDir()
	runRestart(t, first, second)
}

// runRestart is the shared kill -9 scenario: produce (all acknowledged),
// keep producing in the background, kill -9 once some of that is
// acknowledged, restart with next, and check what a user would.
func runRestart(t *testing.T, first, next serveArgs) {
	kafkaAddr, httpAddr := freeAddr(t), freeAddr(t)
	ctx := testContext(t)
	const topic = "restart"
	parts := int32(first.partitions)

	p1 := startStrata(t, first, kafkaAddr, httpAddr)
	prod := newClient(t, kafkaAddr,
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
	acked := produceAll(t, ctx, prod, topic, testRecords("before", 900, parts))
	checkDense(t, acked)

	// The stream: chunks of 30 records, one ProduceSync at a time, until the
	// node dies. Whatever was acknowledged before the kill must survive; the
	// chunk in flight at the kill may or may not.
	attempted := map[string]bool{}
	for _, r := range acked {
		attempted[r.Value] = true
	}
	var (
		mu         sync.Mutex
		streamAck  []rec
		chunksDone int
	)
	streamCtx, stopStream := context.WithCancel(ctx)
	streamDone := make(chan struct{})
	const maxChunks = 2000
	chunks := make([][]*kgo.Record, maxChunks)
	for c := range chunks {
		chunks[c] = testRecords(fmt.Sprintf("stream%04d", c), 30, parts)
		for _, r := range chunks[c] {
			r.Topic = topic
		}
	}
	go func() {
		defer close(streamDone)
		for c := 0; c < maxChunks && streamCtx.Err() == nil; c++ {
			mu.Lock()
			for _, r := range chunks[c] {
				attempted[string(r.Value)] = true
			}
			mu.Unlock()
			res := prod.ProduceSync(streamCtx, chunks[c]...)
			mu.Lock()
			for _, pr := range res {
				if pr.Err == nil {
					streamAck = append(streamAck, fromKgo(pr.Record))
				}
			}
			chunksDone++
			mu.Unlock()
		}
	}()
	// Kill once a few chunks are acknowledged.
	for {
		mu.Lock()
		done := chunksDone
		mu.Unlock()
		if done >= 5 {
			break
		}
		select {
		case <-streamDone:
			t.Fatalf("the producer stream ended after %d chunks, before the kill", done)
		case <-ctx.Done():
			t.Fatalf("only %d stream chunks acknowledged before the deadline", done)
		case <-time.After(5 * time.Millisecond):
		}
	}
	p1.kill(t)
	// Records kgo already buffered ignore ctx; closing the client fails them.
	stopStream()
	prod.Close()
	select {
	case <-streamDone:
	case <-ctx.Done():
		t.Fatal("the producer stream did not stop after the kill")
	}
	mu.Lock()
	acked = append(acked, streamAck...)
	mu.Unlock()
	t.Logf("killed the node with %d records acknowledged", len(acked))

	p2 := startStrata(t, next, kafkaAddr, httpAddr)
	cl := newClient(t, p2.kafkaAddr)
	hw := highWatermarks(t, ctx, cl, topic, parts)
	var total int64
	for _, h := range hw {
		total += h
	}
	if total < int64(len(acked)) {
		t.Fatalf("after restart the high watermarks %v hold %d records; %d were acknowledged", hw, total, len(acked))
	}
	got := consumeN(t, ctx, p2.kafkaAddr, topic, int(total))
	checkRestarted(t, acked, got, attempted)

	// New records continue each partition's offsets.
	prod2 := newClient(t, p2.kafkaAddr,
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
	after := produceAll(t, ctx, prod2, topic, testRecords("after", 300, parts))
	firstNew := map[int32]int64{}
	for _, r := range after {
		if o, ok := firstNew[r.Partition]; !ok || r.Offset < o {
			firstNew[r.Partition] = r.Offset
		}
	}
	for p := range parts {
		if firstNew[p] != hw[p] {
			t.Errorf("partition %d: first offset after restart %d, want the high watermark %d", p, firstNew[p], hw[p])
		}
	}
	for _, r := range after {
		attempted[r.Value] = true
	}
	got = consumeN(t, ctx, p2.kafkaAddr, topic, int(total)+len(after))
	checkRestarted(t, append(acked, after...), got, attempted)
}

// checkRestarted checks a full read of a topic after a crash: offsets dense
// from 0 in each partition, every acknowledged record at its offset with its
// content, every record one that was produced, and none twice.
func checkRestarted(t *testing.T, acked, got []rec, attempted map[string]bool) {
	t.Helper()
	checkDense(t, got)
	type pos struct {
		p int32
		o int64
	}
	at := make(map[pos]rec, len(got))
	count := map[string]int{}
	for _, r := range got {
		at[pos{r.Partition, r.Offset}] = r
		count[r.Value]++
		if !attempted[r.Value] {
			t.Errorf("served a record nobody produced: %v", r)
		}
	}
	for v, c := range count {
		if c > 1 {
			t.Errorf("record %q served %d times", v, c)
		}
	}
	lost := 0
	for _, w := range acked {
		g, ok := at[pos{w.Partition, w.Offset}]
		switch {
		case !ok:
			lost++
			if lost <= 10 {
				t.Errorf("acknowledged record lost: %v", w)
			}
		case !sameContent(w, g):
			t.Errorf("acknowledged record changed at p%d@%d:\n acked  %v\n served %v", w.Partition, w.Offset, w, g)
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged records lost", lost, len(acked))
	}
}
