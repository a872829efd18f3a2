package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/strata-io/strata/cmd/node"
)

// testTimeout bounds every single client operation sequence in a test. It is
// generous because the machine is shared and small; a healthy run takes a
// fraction of it.
const testTimeout = 2 * time.Minute

// stallTimeout is how long a reader waits for the next record before it
// declares the node stuck.
const stallTimeout = 30 * time.Second

// setupHint is appended to every "tool missing" failure: the tools come from
// the CI setup script, never from the test.
const setupHint = "run bash .ci/setup"

// brokerConfig is what a test may choose about its broker.
type brokerConfig struct {
	// Partitions is the partition count of auto-created topics.
	Partitions int32
}

// brokerOpt adjusts one test's broker.
type brokerOpt func(*brokerConfig)

// withPartitions sets the partition count of auto-created topics.
func withPartitions(n int32) brokerOpt {
	return func(c *brokerConfig) { c.Partitions = n }
}

// startBroker starts a full in-process Strata node through cmd/node, the
// same wiring `strata serve` uses (embedded etcd and a local-filesystem
// object store under a fresh data dir, auto-created topics), for one test and
// returns its Kafka address. The node is closed when the test ends; its log
// is printed only when the test failed.
func startBroker(t *testing.T, opts ...brokerOpt) string {
	t.Helper()
	bc := brokerConfig{Partitions: 1}
	for _, o := range opts {
		o(&bc)
	}
	cfg := node.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.KafkaAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.FlushInterval = 10 * time.Millisecond
	cfg.AutoCreateTopics = true
	cfg.DefaultPartitions = bc.Partitions

	logs := &tailBuffer{max: 256 << 10}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	n, err := node.Start(ctx, cfg, logger)
	if err != nil {
		t.Fatalf("start node: %v\nnode log:\n%s", err, logs.String())
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Errorf("close node: %v", err)
		}
		if t.Failed() {
			t.Logf("node log (tail):\n%s", logs.String())
		}
	})
	return n.KafkaAddr()
}

// tailBuffer is a concurrency-safe writer that keeps the last max bytes. The
// node logs into it from its own goroutines, possibly after the test body
// returned, which rules out t.Log.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// testContext returns a context bounded by testTimeout and by the test's own
// deadline, whichever is sooner.
func testContext(t *testing.T) context.Context {
	t.Helper()
	d := time.Now().Add(testTimeout)
	if td, ok := t.Deadline(); ok && td.Before(d) {
		d = td.Add(-5 * time.Second)
	}
	ctx, cancel := context.WithDeadline(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// newClient returns a kgo client for addr, closed when the test ends.
func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	all := append([]kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.AllowAutoTopicCreation(),
		kgo.MetadataMinAge(100 * time.Millisecond),
	}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		t.Fatalf("new kgo client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// rawClient returns a kgo client for hand-built kmsg requests. It caps
// Produce and Fetch at v12 because v13 addresses topics by ID and the tests
// name them.
func rawClient(t *testing.T, addr string) *kgo.Client {
	t.Helper()
	v := kversion.Stable()
	v.SetMaxKeyVersion(0, 12) // Produce
	v.SetMaxKeyVersion(1, 12) // Fetch
	return newClient(t, addr, kgo.MaxVersions(v))
}

// rec is a record as a user sees it: where it is and what it holds.
type rec struct {
	Partition int32
	Offset    int64
	Key       string
	Value     string
	Headers   []hdr
	Timestamp time.Time
}

// hdr is one record header.
type hdr struct{ Key, Value string }

func (r rec) String() string {
	return fmt.Sprintf("p%d@%d key=%q value=%q headers=%v", r.Partition, r.Offset, r.Key, r.Value, r.Headers)
}

// fromKgo converts a kgo record.
func fromKgo(r *kgo.Record) rec {
	out := rec{
		Partition: r.Partition,
		Offset:    r.Offset,
		Key:       string(r.Key),
		Value:     string(r.Value),
		Timestamp: r.Timestamp,
	}
	for _, h := range r.Headers {
		out.Headers = append(out.Headers, hdr{h.Key, string(h.Value)})
	}
	return out
}

// testRecords returns n distinct records spread round-robin over partitions
// (for kgo.ManualPartitioner), each with a key, a value and two headers, one
// of them empty-valued. Values vary in length so batches are not uniform.
func testRecords(prefix string, n int, partitions int32) []*kgo.Record {
	out := make([]*kgo.Record, n)
	for i := range out {
		out[i] = &kgo.Record{
			Partition: int32(i) % partitions,
			Key:       []byte(fmt.Sprintf("%s-key-%05d", prefix, i)),
			Value:     []byte(fmt.Sprintf("%s-value-%05d-%s", prefix, i, strings.Repeat("x", i%97))),
			Headers: []kgo.RecordHeader{
				{Key: "seq", Value: []byte(fmt.Sprint(i))},
				{Key: "empty", Value: nil},
			},
		}
	}
	return out
}

// produceAll produces rs through cl, waits for every acknowledgement and
// returns the records as acknowledged (with their partitions and offsets).
func produceAll(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, rs []*kgo.Record) []rec {
	t.Helper()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		errs  []error
		acked = make([]rec, len(rs))
	)
	for i, r := range rs {
		r.Topic = topic
		wg.Add(1)
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("record %d: %w", i, err))
				mu.Unlock()
				return
			}
			acked[i] = fromKgo(r)
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d produces failed; first: %v", len(errs), len(rs), errs[0])
	}
	return acked
}

// consumeN reads topic from the start of every partition with a fresh kgo
// client until it has want records, failing the test if ctx ends first or
// if no record arrives for stallTimeout (so a node that stopped serving
// fails in seconds, not at the test deadline).
func consumeN(t *testing.T, ctx context.Context, addr, topic string, want int, opts ...kgo.Opt) []rec {
	t.Helper()
	cl := newClient(t, addr, append([]kgo.Opt{
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200 * time.Millisecond),
	}, opts...)...)
	defer cl.Close()
	var got []rec
	progress := time.Now()
	for len(got) < want {
		pollCtx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pollCtx)
		cancel()
		if ctx.Err() != nil {
			t.Fatalf("consume %s: got %d of %d records before the deadline", topic, len(got), want)
		}
		for _, fe := range fs.Errors() {
			if pollCtx.Err() != nil && errors.Is(fe.Err, pollCtx.Err()) {
				continue // this poll's own timeout
			}
			t.Fatalf("consume %s: fetch error on partition %d: %v", fe.Topic, fe.Partition, fe.Err)
		}
		before := len(got)
		fs.EachRecord(func(r *kgo.Record) { got = append(got, fromKgo(r)) })
		switch {
		case len(got) > before:
			progress = time.Now()
		case time.Since(progress) > stallTimeout:
			t.Fatalf("consume %s: got %d of %d records, then nothing for %v", topic, len(got), want, stallTimeout)
		}
	}
	return got
}

// checkSame fails the test unless got holds exactly the records of want:
// each once, at its acknowledged partition and offset, with key, value and
// headers intact, and in offset order per partition. Offsets per partition
// must be dense and start at 0 when dense is set (a fresh topic).
func checkSame(t *testing.T, want, got []rec, dense bool) {
	t.Helper()
	type pos struct {
		p int32
		o int64
	}
	byPos := make(map[pos]rec, len(want))
	for _, r := range want {
		byPos[pos{r.Partition, r.Offset}] = r
	}
	if len(byPos) != len(want) {
		t.Fatalf("producer got %d acks but only %d distinct (partition, offset) pairs: offsets reused", len(want), len(byPos))
	}
	seen := make(map[pos]bool, len(got))
	last := make(map[int32]int64)
	bad := 0
	for _, r := range got {
		k := pos{r.Partition, r.Offset}
		if seen[k] {
			t.Errorf("duplicate record %v", r)
			bad++
		}
		seen[k] = true
		if prev, ok := last[r.Partition]; ok && r.Offset <= prev {
			t.Errorf("partition %d out of order: offset %d after %d", r.Partition, r.Offset, prev)
			bad++
		}
		last[r.Partition] = r.Offset
		w, ok := byPos[k]
		if !ok {
			t.Errorf("consumed a record nobody produced: %v", r)
			bad++
		} else if !sameContent(w, r) {
			t.Errorf("record differs at p%d@%d:\n produced %v\n consumed %v", r.Partition, r.Offset, w, r)
			bad++
		}
		if bad > 10 {
			t.Fatalf("too many mismatches; stopping")
		}
	}
	for _, w := range want {
		if !seen[pos{w.Partition, w.Offset}] {
			t.Errorf("acknowledged record never consumed: %v", w)
			bad++
			if bad > 10 {
				t.Fatalf("too many missing records; stopping")
			}
		}
	}
	if dense {
		checkDense(t, want)
	}
}

// checkDense fails unless the offsets of rs in each partition are exactly
// 0..n-1.
func checkDense(t *testing.T, rs []rec) {
	t.Helper()
	per := map[int32][]int64{}
	for _, r := range rs {
		per[r.Partition] = append(per[r.Partition], r.Offset)
	}
	for p, offs := range per {
		sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
		for i, o := range offs {
			if o != int64(i) {
				t.Errorf("partition %d: offsets not dense from 0: position %d holds offset %d", p, i, o)
				break
			}
		}
	}
}

// sameContent compares what a user put in a record.
func sameContent(a, b rec) bool {
	if a.Key != b.Key || a.Value != b.Value || len(a.Headers) != len(b.Headers) {
		return false
	}
	for i := range a.Headers {
		if a.Headers[i] != b.Headers[i] {
			return false
		}
	}
	return true
}

// listOffset asks the partition's leader for the offset at ts (a timestamp
// in milliseconds, or -1 latest, -2 earliest) and returns offset and
// timestamp, failing on any error code.
func listOffset(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, partition int32, ts int64) (int64, int64) {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition = partition
	rp.Timestamp = ts
	rp.CurrentLeaderEpoch = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("ListOffsets %s[%d] ts=%d: %v", topic, partition, ts, err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("ListOffsets %s[%d] ts=%d: want one topic with one partition, got %+v", topic, partition, ts, resp.Topics)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatalf("ListOffsets %s[%d] ts=%d: error code %d", topic, partition, ts, p.ErrorCode)
	}
	return p.Offset, p.Timestamp
}

// ensureTopic asks for topic's metadata with auto-creation allowed, as
// clients do before producing, until the topic has a leader for every
// partition. It returns the partition count.
func ensureTopic(t *testing.T, ctx context.Context, cl *kgo.Client, topic string) int32 {
	t.Helper()
	for {
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
		req.AllowAutoTopicCreation = true
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatalf("metadata for %s: %v", topic, err)
		}
		var last error
		if len(resp.Topics) == 1 {
			mt := resp.Topics[0]
			last = kerr.ErrorForCode(mt.ErrorCode)
			ready := last == nil && len(mt.Partitions) > 0
			for _, p := range mt.Partitions {
				if p.ErrorCode != 0 || p.Leader < 0 {
					ready = false
				}
			}
			if ready {
				return int32(len(mt.Partitions))
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("topic %s not ready before the deadline (last error %v, topics %d)", topic, last, len(resp.Topics))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// highWatermarks returns the latest offset of each of the first n partitions.
func highWatermarks(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, n int32) []int64 {
	t.Helper()
	out := make([]int64, n)
	for p := range n {
		out[p], _ = listOffset(t, ctx, cl, topic, p, -1)
	}
	return out
}

// requireTool returns the path of an executable on PATH or fails the test
// with the setup hint.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found on PATH (%v): %s", name, err, setupHint)
	}
	return p
}

// nodePath is where .ci/setup installs the npm packages the Node scripts
// need; the tests set NODE_PATH to it themselves so plain `go test` works.
func nodePath(t *testing.T) string {
	t.Helper()
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatalf("home dir: %v", err)
	}
	p := filepath.Join(home, ".cache", "strata", "node", "node_modules")
	if _, err := os.Stat(filepath.Join(p, "kafkajs", "package.json")); err != nil {
		t.Fatalf("kafkajs not installed under %s (%v): %s", p, err, setupHint)
	}
	return p
}

// debianPython is Debian's own interpreter, the one whose dist-packages
// hold the python3-* packages .ci/setup installs.
const debianPython = "/usr/bin/python3"

// requirePythonModule returns a python3 that can import module or fails the
// test with the setup hint, naming pkg, the Debian package that provides
// it. It tries python3 on PATH first and then Debian's /usr/bin/python3: a
// python3 earlier on PATH (pyenv, a virtualenv) does not see Debian's
// dist-packages.
func requirePythonModule(t *testing.T, module, pkg string) string {
	t.Helper()
	var cands, tried []string
	if p, err := exec.LookPath("python3"); err == nil {
		cands = append(cands, p)
	} else {
		tried = append(tried, fmt.Sprintf("python3 not on PATH (%v)", err))
	}
	if _, err := os.Stat(debianPython); err == nil {
		cands = append(cands, debianPython)
	} else {
		tried = append(tried, fmt.Sprintf("no %s (%v)", debianPython, err))
	}
	for _, py := range cands {
		out, err := exec.Command(py, "-c", "import "+module).CombinedOutput()
		if err == nil {
			return py
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		tried = append(tried, fmt.Sprintf("%s: %v: %s", py, err, lines[len(lines)-1]))
	}
	t.Fatalf("no python3 can import %s (Debian package %s): %s: %s", module, pkg, strings.Join(tried, "; "), setupHint)
	return ""
}

// runCmd runs a command with stdin, bounded by ctx, and returns stdout and
// stderr. It fails the test if the command fails.
func runCmd(t *testing.T, ctx context.Context, stdin []byte, env []string, name string, args ...string) (stdout, stderr string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, tail(out.String()), tail(errb.String()))
	}
	return out.String(), errb.String()
}

// tail returns the last few KiB of s, enough for a failure message.
func tail(s string) string {
	const max = 8 << 10
	if len(s) > max {
		return "…" + s[len(s)-max:]
	}
	return s
}
