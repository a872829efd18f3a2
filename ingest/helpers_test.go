package ingest

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/segment/kbatch"
	"github.com/strata-io/strata/tier"
	"github.com/strata-io/strata/tier/objstore"
)

// sharedEtcd is one embedded etcd for the whole package; each test node
// lives under its own cluster prefix.
var sharedEtcd *metadata.Embedded

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "strata-ingest-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sharedEtcd, err = metadata.StartEmbedded(ctx, metadata.EmbeddedConfig{Dir: dir}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	sharedEtcd.Close()
	if code == 0 {
		// etcd's client and server packages keep a few process-wide
		// goroutines; everything a Server starts must be gone.
		if err := goleak.Find(
			goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
			goleak.IgnoreAnyFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
		); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			return 1
		}
	}
	return code
}

// testNode is a Server on real metadata (shared etcd) and a real tier on a
// file object store, listening on 127.0.0.1.
type testNode struct {
	t    testing.TB
	meta *metadata.Store
	tier *tier.Tier
	srv  *Server
	reg  *prometheus.Registry
	addr string
}

var nonName = regexp.MustCompile(`[^a-zA-Z0-9._-]`)

// startNode starts a node for t; mod may change the server's Config. It is
// shut down (and checked to shut down cleanly) when t ends.
func startNode(t testing.TB, mod func(*Config)) *testNode {
	t.Helper()
	ctx := context.Background()
	cluster := nonName.ReplaceAllString(t.Name(), "_")
	if len(cluster) > 200 {
		cluster = cluster[:200]
	}
	meta, err := metadata.Open(ctx, metadata.Config{Endpoints: sharedEtcd.Endpoints(), Cluster: cluster}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meta.Close() })
	bucket, err := objstore.Open(ctx, "file://"+filepath.Join(t.TempDir(), "objects"), objstore.Options{CreateBucket: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bucket.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	cfg := Config{
		NodeID:           1,
		AdvertisedHost:   "127.0.0.1",
		AdvertisedPort:   int32(port),
		ClusterID:        "test-cluster",
		AutoCreateTopics: true,
	}
	if mod != nil {
		mod(&cfg)
	}
	// The tier has the server's id: with live nodes registered, it leads
	// what metadata assigns that id.
	tr, err := tier.New(tier.Config{NodeID: cfg.NodeID, DataDir: t.TempDir(), FlushInterval: 5 * time.Millisecond}, bucket, meta, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tr.Close(ctx)
	})
	reg := prometheus.NewRegistry()
	srv := NewServer(cfg, meta, tr, testLogger(), reg)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve returned %v after Close, want nil", err)
		}
	})
	return &testNode{t: t, meta: meta, tier: tr, srv: srv, reg: reg, addr: ln.Addr().String()}
}

// createTopic creates a topic through metadata and waits for the cache.
func (n *testNode) createTopic(name string, partitions int32) metadata.Topic {
	n.t.Helper()
	tp, err := n.meta.CreateTopic(context.Background(), name, partitions, nil)
	if err != nil {
		n.t.Fatal(err)
	}
	waitFor(n.t, func() bool { _, ok := n.meta.Topic(name); return ok })
	return tp
}

// waitFor polls cond until it holds or 10 seconds pass.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// client is a raw Kafka connection: requests are encoded with kmsg's
// RequestFormatter and responses read frame by frame.
type client struct {
	t    testing.TB
	nc   net.Conn
	br   *bufio.Reader
	corr int32
	fmt  *kmsg.RequestFormatter
}

func (n *testNode) dial() *client { return dial(n.t, n.addr) }

func dial(t testing.TB, addr string) *client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	return &client{t: t, nc: nc, br: bufio.NewReader(nc), fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID("ingest-test"))}
}

// send writes req at its set version and returns its correlation id.
func (c *client) send(req kmsg.Request) int32 {
	c.t.Helper()
	c.corr++
	if _, err := c.nc.Write(c.fmt.AppendRequest(nil, req, c.corr)); err != nil {
		c.t.Fatal(err)
	}
	return c.corr
}

// writeRaw writes raw bytes.
func (c *client) writeRaw(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

// readFrame reads one response frame.
func (c *client) readFrame() ([]byte, error) {
	var sz [4]byte
	if _, err := io.ReadFull(c.br, sz[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(sz[:]))
	_, err := io.ReadFull(c.br, b)
	return b, err
}

// recv reads the response to a request sent with correlation id corr into
// resp, whose version must be set.
func (c *client) recv(corr int32, resp kmsg.Response) {
	c.t.Helper()
	b, err := c.readFrame()
	if err != nil {
		c.t.Fatalf("reading %s response: %v", kmsg.NameForKey(resp.Key()), err)
	}
	if got := int32(binary.BigEndian.Uint32(b)); got != corr {
		c.t.Fatalf("%s response has correlation id %d, want %d", kmsg.NameForKey(resp.Key()), got, corr)
	}
	b = b[4:]
	if resp.IsFlexible() && resp.Key() != int16(kmsg.ApiVersions) {
		if len(b) == 0 || b[0] != 0 {
			c.t.Fatalf("flexible response header: want one empty tag section")
		}
		b = b[1:]
	}
	if err := resp.ReadFrom(b); err != nil {
		c.t.Fatalf("parsing %s v%d response: %v", kmsg.NameForKey(resp.Key()), resp.GetVersion(), err)
	}
}

// roundTrip sends req and returns its response.
func roundTrip[R kmsg.Response](c *client, req kmsg.Request) R {
	c.t.Helper()
	corr := c.send(req)
	resp := req.ResponseKind()
	c.recv(corr, resp)
	return resp.(R)
}

// expectClosed asserts the server closes the connection without answering.
func (c *client) expectClosed() {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := c.readFrame()
	if err == nil {
		c.t.Fatalf("got a %d-byte response, want the connection closed", len(b))
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatal("connection still open after 10s, want it closed")
	}
}

// batch builds a valid record batch of n records with values "<prefix>-<i>".
func batch(t testing.TB, prefix string, n int, opts kbatch.BuildOptions) []byte {
	t.Helper()
	recs := make([]kbatch.Record, n)
	now := time.Now().UnixMilli()
	for i := range recs {
		recs[i] = kbatch.Record{Timestamp: now, Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("%s-%d", prefix, i))}
	}
	b, err := kbatch.Build(recs, opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// produceReq builds a single-partition produce request.
func produceReq(version int16, acks int16, topic string, partition int32, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version = version
	req.Acks = acks
	req.TimeoutMillis = 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// fetchReq builds a single-partition fetch request.
func fetchReq(version int16, topic string, id [16]byte, partition int32, offset int64, maxWait, minBytes int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version = version
	req.MaxWaitMillis = maxWait
	req.MinBytes = minBytes
	req.MaxBytes = 50 << 20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rt.TopicID = id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = partition
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func topicPartition(topic string, p int32) metadata.TP {
	return metadata.TP{Topic: topic, Partition: p}
}

// testLogger logs to stderr when STRATA_TEST_LOG is set, else nowhere.
func testLogger() *slog.Logger {
	if os.Getenv("STRATA_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
