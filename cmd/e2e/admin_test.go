package e2e

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// createTopic creates topic with the given partition count through
// CreateTopics and waits until every partition has a leader.
func createTopic(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, partitions int32, configs ...string) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic = topic
	rt.NumPartitions = partitions
	rt.ReplicationFactor = 1
	for i := 0; i+1 < len(configs); i += 2 {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = configs[i], kmsg.StringPtr(configs[i+1])
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if got := ensureTopic(t, ctx, cl, topic); got != partitions {
		t.Fatalf("topic %s has %d partitions, want %d", topic, got, partitions)
	}
}

// produceValues produces count records with values "<prefix>-<i>" to one
// partition, synchronously, and fails on any error.
func produceValues(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, partition int32, prefix string, count int, size int) {
	t.Helper()
	for i := range count {
		v := fmt.Sprintf("%s-%05d-", prefix, i)
		for len(v) < size {
			v += "x"
		}
		r := &kgo.Record{Topic: topic, Partition: partition, Value: []byte(v)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %s[%d] #%d: %v", topic, partition, i, err)
		}
	}
}

// TestSaramaAdmin runs sarama's ClusterAdmin at three protocol levels:
// V1_0_0_0 sends the v0 admin requests (DescribeConfigs v0 has IsDefault
// instead of a source), V2_0_0_0 the v1-v2 ones, and the default V2_8_0_0
// the flexible ones plus IncrementalAlterConfigs and DescribeCluster.
func TestSaramaAdmin(t *testing.T) {
	versions := []sarama.KafkaVersion{sarama.V1_0_0_0, sarama.V2_0_0_0, sarama.DefaultVersion}
	addr := startBroker(t)
	ctx := testContext(t)
	cl := newClient(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for _, version := range versions {
		t.Run(version.String(), func(t *testing.T) {
			topic := "sarama-admin-" + version.String()
			createTopic(t, ctx, cl, topic, 2)
			produceValues(t, ctx, cl, topic, 0, "v", 10, 20)

			cfg := sarama.NewConfig()
			cfg.ClientID = "strata-e2e-admin"
			cfg.Version = version
			admin, err := sarama.NewClusterAdmin([]string{addr}, cfg)
			if err != nil {
				t.Fatalf("sarama cluster admin: %v", err)
			}
			defer admin.Close()
			res := sarama.ConfigResource{Type: sarama.TopicResource, Name: topic}
			describe := func() map[string]sarama.ConfigEntry {
				t.Helper()
				entries, err := admin.DescribeConfig(res)
				if err != nil {
					t.Fatalf("DescribeConfig %s: %v", topic, err)
				}
				out := make(map[string]sarama.ConfigEntry, len(entries))
				for _, e := range entries {
					out[e.Name] = e
				}
				return out
			}

			cfgs := describe()
			if rm := cfgs["retention.ms"]; rm.Value != "604800000" || !rm.Default || rm.ReadOnly {
				t.Fatalf("retention.ms before altering: %+v (all: %v)", rm, cfgs)
			}
			if err := admin.AlterConfig(sarama.TopicResource, topic, map[string]*string{"retention.ms": strPtr("3600000")}, false); err != nil {
				t.Fatalf("AlterConfig: %v", err)
			}
			if rm := describe()["retention.ms"]; rm.Value != "3600000" || rm.Default || (version != sarama.V1_0_0_0 && rm.Source != sarama.SourceTopic) {
				t.Fatalf("retention.ms after altering: %+v", rm)
			}
			err = admin.AlterConfig(sarama.TopicResource, topic, map[string]*string{"cleanup.policy": strPtr("shred")}, false)
			if !errors.Is(err, sarama.ErrInvalidConfig) {
				t.Fatalf("AlterConfig cleanup.policy=shred: %v, want INVALID_CONFIG", err)
			}
			if rm := describe()["retention.ms"]; rm.Value != "3600000" {
				t.Fatalf("a refused AlterConfig changed retention.ms to %q", rm.Value)
			}

			if version.IsAtLeast(sarama.V2_3_0_0) {
				err := admin.IncrementalAlterConfig(sarama.TopicResource, topic, map[string]sarama.IncrementalAlterConfigsEntry{
					"retention.bytes": {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: strPtr("1048576")},
					"retention.ms":    {Operation: sarama.IncrementalAlterConfigsOperationDelete},
				}, false)
				if err != nil {
					t.Fatalf("IncrementalAlterConfig: %v", err)
				}
				cfgs := describe()
				if rb, rm := cfgs["retention.bytes"], cfgs["retention.ms"]; rb.Value != "1048576" || rb.Default || rm.Value != "604800000" || !rm.Default {
					t.Fatalf("after IncrementalAlterConfig: retention.bytes %+v, retention.ms %+v", rb, rm)
				}
			}

			if err := admin.CreatePartitions(topic, 3, nil, false); err != nil {
				t.Fatalf("CreatePartitions to 3: %v", err)
			}
			if got := ensureTopic(t, ctx, cl, topic); got != 3 {
				t.Fatalf("after CreatePartitions: %d partitions, want 3", got)
			}
			if err := admin.CreatePartitions(topic, 2, nil, false); !errors.Is(err, sarama.ErrInvalidPartitions) {
				t.Fatalf("CreatePartitions to 2: %v, want INVALID_PARTITIONS", err)
			}

			if err := admin.DeleteRecords(topic, map[int32]int64{0: 4}); err != nil {
				t.Fatalf("DeleteRecords: %v", err)
			}
			if got, _ := listOffset(t, ctx, cl, topic, 0, -2); got != 4 {
				t.Fatalf("earliest offset after DeleteRecords to 4: %d", got)
			}

			brokers, controller, err := admin.DescribeCluster()
			if err != nil {
				t.Fatalf("DescribeCluster: %v", err)
			}
			if len(brokers) != 1 || brokers[0].ID() != controller {
				t.Fatalf("DescribeCluster: %d brokers, controller %d", len(brokers), controller)
			}
			entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.BrokerResource, Name: strconv.Itoa(int(controller))})
			if err != nil {
				t.Fatalf("DescribeConfig broker %d: %v", controller, err)
			}
			found := false
			for _, e := range entries {
				if e.Name == "num.partitions" {
					found = e.Value == "1" && e.ReadOnly
				}
			}
			if !found {
				t.Fatalf("broker configs have no read-only num.partitions=1: %+v", entries)
			}
			err = admin.AlterConfig(sarama.BrokerResource, strconv.Itoa(int(controller)), map[string]*string{"num.partitions": strPtr("3")}, false)
			if !errors.Is(err, sarama.ErrInvalidRequest) {
				t.Fatalf("altering a broker config: %v, want INVALID_REQUEST", err)
			}
		})
	}
}

// TestRetentionAndDeleteRecords sets a small retention.bytes with
// IncrementalAlterConfigs (franz-go, flexible versions), produces past it,
// and waits for the log start offset to advance; below it Fetch answers
// OFFSET_OUT_OF_RANGE. DeleteRecords then moves it to the end.
func TestRetentionAndDeleteRecords(t *testing.T) {
	addr := startBroker(t)
	ctx := testContext(t)
	cl := rawClient(t, addr)
	topic := "retention-bytes"
	createTopic(t, ctx, cl, topic, 1)

	inc := kmsg.NewPtrIncrementalAlterConfigsRequest()
	r := kmsg.NewIncrementalAlterConfigsRequestResource()
	r.ResourceType = kmsg.ConfigResourceTypeTopic
	r.ResourceName = topic
	c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	c.Name, c.Op, c.Value = "retention.bytes", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("4096")
	r.Configs = append(r.Configs, c)
	inc.Resources = append(inc.Resources, r)
	incResp, err := inc.RequestWith(ctx, cl)
	if err != nil || incResp.Resources[0].ErrorCode != 0 {
		t.Fatalf("IncrementalAlterConfigs retention.bytes=4096: %v %+v", err, incResp)
	}

	desc := kmsg.NewPtrDescribeConfigsRequest()
	dr := kmsg.NewDescribeConfigsRequestResource()
	dr.ResourceType = kmsg.ConfigResourceTypeTopic
	dr.ResourceName = topic
	dr.ConfigNames = []string{"retention.bytes"}
	desc.Resources = append(desc.Resources, dr)
	descResp, err := desc.RequestWith(ctx, cl)
	if err != nil || len(descResp.Resources) != 1 || len(descResp.Resources[0].Configs) != 1 {
		t.Fatalf("DescribeConfigs: %v %+v", err, descResp)
	}
	if rc := descResp.Resources[0].Configs[0]; *rc.Value != "4096" || rc.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("described retention.bytes: %s from %v", *rc.Value, rc.Source)
	}

	// Each synchronous produce is its own flush, so its own index entry:
	// retention deletes whole entries.
	produceValues(t, ctx, cl, topic, 0, "r", 24, 1000)
	for {
		start, _ := listOffset(t, ctx, cl, topic, 0, -2)
		if start > 0 {
			t.Logf("log start offset advanced to %d", start)
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the log start offset did not advance before the deadline")
		case <-time.After(100 * time.Millisecond):
		}
	}

	fetch := kmsg.NewPtrFetchRequest()
	fetch.ReplicaID = -1
	fetch.MaxWaitMillis = 100
	fetch.MinBytes = 1
	fetch.MaxBytes = 1 << 20
	fetch.SessionEpoch = -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition = 0
	fp.FetchOffset = 0
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	fetchResp, err := fetch.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("fetch at offset 0: %v", err)
	}
	if code := fetchResp.Topics[0].Partitions[0].ErrorCode; code != kerr.OffsetOutOfRange.Code {
		t.Fatalf("fetch below the log start: %v, want OFFSET_OUT_OF_RANGE", kerr.ErrorForCode(code))
	}

	hw, _ := listOffset(t, ctx, cl, topic, 0, -1)
	del := kmsg.NewPtrDeleteRecordsRequest()
	del.TimeoutMillis = 30000
	dt := kmsg.NewDeleteRecordsRequestTopic()
	dt.Topic = topic
	dp := kmsg.NewDeleteRecordsRequestTopicPartition()
	dp.Partition = 0
	dp.Offset = -1 // the high watermark
	dt.Partitions = append(dt.Partitions, dp)
	del.Topics = append(del.Topics, dt)
	delResp, err := del.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("DeleteRecords: %v", err)
	}
	if p := delResp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.LowWatermark != hw {
		t.Fatalf("DeleteRecords to the high watermark %d: %v, low watermark %d", hw, kerr.ErrorForCode(p.ErrorCode), p.LowWatermark)
	}
	if start, _ := listOffset(t, ctx, cl, topic, 0, -2); start != hw {
		t.Fatalf("earliest offset after DeleteRecords: %d, want %d", start, hw)
	}
}

// TestIdempotentProduceThroughCuts is the acceptance check for idempotent
// producing: franz-go's default (idempotent, acks=all) producer sends 10000
// records through a proxy that, a few times, swallows a Produce response
// and cuts the connection, so the producer retries batches the node already
// appended. The topic must end up holding every record exactly once, in
// production order per partition.
func TestIdempotentProduceThroughCuts(t *testing.T) {
	const (
		partitions = 3
		n          = 10000
		cuts       = 4
	)
	addr := startBroker(t, withPartitions(partitions))
	ctx := testContext(t)
	proxy := startCutProxy(t, addr)
	topic := "idempotent-cuts"
	cl := newClient(t, addr,
		kgo.Dialer(proxy.dial),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(16<<10), // many requests, so cuts land mid-stream
	)
	ensureTopic(t, ctx, cl, topic)

	var (
		acked   atomic.Int64
		wg      sync.WaitGroup
		mu      sync.Mutex
		errs    []error
		results = make([]rec, n)
	)
	done := make(chan struct{})
	armed := make(chan struct{})
	go func() {
		defer close(armed)
		for i := 1; i <= cuts; i++ {
			threshold := int64(i * n / (cuts + 2))
			for acked.Load() < threshold || proxy.isArmed() {
				select {
				case <-done:
					return
				case <-time.After(time.Millisecond):
				}
			}
			proxy.arm()
		}
	}()
	for i, r := range testRecords("idem", n, partitions) {
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
			results[i] = fromKgo(r)
			acked.Add(1)
		})
	}
	wg.Wait()
	close(done)
	<-armed
	if len(errs) > 0 {
		t.Fatalf("%d of %d produces failed; first: %v", len(errs), n, errs[0])
	}
	if got := proxy.dropped.Load(); got != cuts {
		t.Fatalf("the proxy swallowed %d Produce responses, want %d: the test did not exercise retries", got, cuts)
	}
	t.Logf("swallowed %d Produce responses and cut %d connections", proxy.dropped.Load(), proxy.cutConns.Load())

	// No duplicate was appended: the partitions hold exactly n records.
	var total int64
	for _, hw := range highWatermarks(t, ctx, cl, topic, partitions) {
		total += hw
	}
	if total != n {
		t.Fatalf("the topic holds %d records, want %d", total, n)
	}
	got := consumeN(t, ctx, addr, topic, n)
	checkSame(t, results, got, true)
	checkProductionOrder(t, got)

	// The node remembers the producer in every partition.
	id, epoch, err := cl.ProducerID(ctx)
	if err != nil || id < 0 {
		t.Fatalf("producer id: %d, %v", id, err)
	}
	req := kmsg.NewPtrDescribeProducersRequest()
	dt := kmsg.NewDescribeProducersRequestTopic()
	dt.Topic = topic
	dt.Partitions = []int32{0, 1, 2}
	req.Topics = append(req.Topics, dt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("DescribeProducers: %v", err)
	}
	for _, p := range resp.Topics[0].Partitions {
		if p.ErrorCode != 0 || len(p.ActiveProducers) != 1 || p.ActiveProducers[0].ProducerID != id || p.ActiveProducers[0].ProducerEpoch != int32(epoch) {
			t.Errorf("DescribeProducers partition %d: %v %+v, want producer %d epoch %d", p.Partition, kerr.ErrorForCode(p.ErrorCode), p.ActiveProducers, id, epoch)
		}
	}
}

// checkProductionOrder fails unless, in each partition, records come in the
// order they were produced (their "seq" header rises with the offset).
func checkProductionOrder(t *testing.T, rs []rec) {
	t.Helper()
	per := map[int32][]rec{}
	for _, r := range rs {
		per[r.Partition] = append(per[r.Partition], r)
	}
	for p, list := range per {
		sort.Slice(list, func(i, j int) bool { return list[i].Offset < list[j].Offset })
		last := -1
		for _, r := range list {
			seq, err := strconv.Atoi(r.Headers[0].Value)
			if err != nil || r.Headers[0].Key != "seq" {
				t.Fatalf("record without a seq header: %v", r)
			}
			if seq <= last {
				t.Fatalf("partition %d: record %d at offset %d after record %d", p, seq, r.Offset, last)
			}
			last = seq
		}
	}
}

// cutProxy forwards Kafka connections to one broker on 127.0.0.1. When
// armed, it swallows the next Produce response it sees and cuts that
// connection: the request was handled, the client never hears so, and
// retries.
type cutProxy struct {
	t        *testing.T
	ln       net.Listener
	upstream string

	armedFlag atomic.Bool
	dropped   atomic.Int64 // Produce responses swallowed
	cutConns  atomic.Int64

	mu     sync.Mutex
	closed bool
	conns  map[*proxyConn]struct{}
	wg     sync.WaitGroup
}

// proxyConn is one client connection and its upstream connection.
type proxyConn struct {
	client, server net.Conn
	mu             sync.Mutex
	keys           map[int32]int16 // correlation id -> API key of requests in flight
}

func (pc *proxyConn) close() {
	pc.client.Close()
	pc.server.Close()
}

// startCutProxy starts a proxy to upstream, stopped when the test ends.
func startCutProxy(t *testing.T, upstream string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{t: t, ln: ln, upstream: upstream, conns: make(map[*proxyConn]struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// dial is a kgo.Dialer: every broker connection goes through the proxy
// (the tests' clusters have one broker).
func (p *cutProxy) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", p.ln.Addr().String())
}

func (p *cutProxy) arm()          { p.armedFlag.Store(true) }
func (p *cutProxy) isArmed() bool { return p.armedFlag.Load() }

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.DialTimeout("tcp", p.upstream, 5*time.Second)
		if err != nil {
			client.Close()
			continue
		}
		pc := &proxyConn{client: client, server: server, keys: make(map[int32]int16)}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			pc.close()
			return
		}
		p.conns[pc] = struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go p.requests(pc)
		go p.responses(pc)
	}
}

// requests forwards request frames, remembering each one's API key.
func (p *cutProxy) requests(pc *proxyConn) {
	defer p.wg.Done()
	defer pc.close()
	br := bufio.NewReader(pc.client)
	for {
		frame, err := readProxyFrame(br)
		if err != nil {
			return
		}
		if len(frame) >= 12 {
			key := int16(binary.BigEndian.Uint16(frame[4:]))
			corr := int32(binary.BigEndian.Uint32(frame[8:]))
			pc.mu.Lock()
			pc.keys[corr] = key
			pc.mu.Unlock()
		}
		if _, err := pc.server.Write(frame); err != nil {
			return
		}
	}
}

// responses forwards response frames, except the first Produce response
// after the proxy is armed, which it swallows before cutting the
// connection.
func (p *cutProxy) responses(pc *proxyConn) {
	defer p.wg.Done()
	defer func() {
		pc.close()
		p.mu.Lock()
		delete(p.conns, pc)
		p.mu.Unlock()
	}()
	br := bufio.NewReader(pc.server)
	for {
		frame, err := readProxyFrame(br)
		if err != nil || len(frame) < 8 {
			return
		}
		corr := int32(binary.BigEndian.Uint32(frame[4:]))
		pc.mu.Lock()
		key, ok := pc.keys[corr]
		delete(pc.keys, corr)
		pc.mu.Unlock()
		if ok && key == int16(kmsg.Produce) && p.armedFlag.CompareAndSwap(true, false) {
			p.dropped.Add(1)
			p.cutConns.Add(1)
			return
		}
		if _, err := pc.client.Write(frame); err != nil {
			return
		}
	}
}

// readProxyFrame reads one size-prefixed frame, size included.
func readProxyFrame(r io.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > 256<<20 {
		return nil, fmt.Errorf("frame of %d bytes", n)
	}
	frame := make([]byte, 4+n)
	copy(frame, size[:])
	_, err := io.ReadFull(r, frame[4:])
	return frame, err
}

func (p *cutProxy) close() {
	p.mu.Lock()
	p.closed = true
	for pc := range p.conns {
		pc.close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}

func strPtr(s string) *string { return &s }
