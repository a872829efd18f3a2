package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"

	"github.com/strata-io/strata/metadata"
)

// The compaction tests run real clients against compacted topics on a
// `strata serve` subprocess whose etcd (embedded, run by the test) and
// object store (a file:// folder) live outside its data folder, so the node
// can be killed with kill -9 and started again on an empty data folder.
//
// A leader serves the data it appended itself from its hot tier, which
// compaction does not rewrite (ARCHITECTURE.md, "Known gaps"); a node with
// an empty data folder reads everything from the object store, where
// compaction happens. So each test checks the latest value of every key on
// the live node, then restarts it empty and checks again, this time also
// that the log did shrink.

// compactedTopicConfigs are a compacted topic's configs that make
// compaction run within seconds: a roll once 4 KiB are flushed or the
// oldest flushed data is 1 s old, and a pass as soon as 1% of the rolled
// log is dirty. With keepTombstones delete.retention.ms stays Kafka's
// default (a day), so a deleted key reads as a tombstone; otherwise it is
// 0, and a later pass removes the tombstones an earlier one cleaned (a
// deleted key is gone).
func compactedTopicConfigs(keepTombstones bool) map[string]string {
	c := map[string]string{
		"cleanup.policy":            "compact",
		"segment.bytes":             "4096",
		"segment.ms":                "1000",
		"min.cleanable.dirty.ratio": "0.01",
	}
	if !keepTombstones {
		c["delete.retention.ms"] = "0"
	}
	return c
}

// startStatelessNode starts an etcd for the test, a file:// object store and
// one `strata serve` on them, with auto-created topics of partitions
// partitions. restartEmpty brings it back on an empty data folder.
func startStatelessNode(t *testing.T, ctx context.Context, partitions int) *strataProc {
	t.Helper()
	etcd, err := metadata.StartEmbedded(ctx, metadata.EmbeddedConfig{Dir: t.TempDir()}, nil)
	if err != nil {
		t.Fatalf("start embedded etcd: %v", err)
	}
	t.Cleanup(func() {
		if err := etcd.Close(); err != nil {
			t.Errorf("close embedded etcd: %v", err)
		}
	})
	a := serveArgs{dataDir: t.TempDir(), etcd: etcd.Endpoints(), objectStore: "file://" + t.TempDir(), partitions: partitions}
	return startStrata(t, a, freeAddr(t), freeAddr(t))
}

// restartEmpty kills p with kill -9 and starts it again with the same
// flags, addresses, etcd and object store, on a new, empty data folder.
func restartEmpty(t *testing.T, p *strataProc) *strataProc {
	t.Helper()
	p.kill(t)
	a := p.args
	a.dataDir = t.TempDir()
	return startStrata(t, a, p.kafkaAddr, p.httpAddr)
}

// metricSum returns the sum of every series of the Prometheus metric name
// that the node at httpAddr exposes on /metrics (0 when it has none).
func metricSum(ctx context.Context, httpAddr, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (!strings.HasPrefix(rest, " ") && !strings.HasPrefix(rest, "{")) {
			continue
		}
		fields := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(fields) == 0 {
			return 0, fmt.Errorf("metric line without a value: %q", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, fmt.Errorf("metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum, sc.Err()
}

// waitCompacted waits until the node has run more than after compaction
// passes and then neither rolled nor compacted anything for a few
// maintenance ticks (the roller rolls the last flushed data within
// segment.ms, and a pass follows its roll in the same tick): by then every
// compacted partition is compacted to its end. It returns the passes run.
func waitCompacted(t *testing.T, ctx context.Context, p *strataProc, after float64) float64 {
	t.Helper()
	const quiet = 5 * time.Second
	var last [2]float64
	changed := time.Now()
	for {
		var now [2]float64
		for i, name := range []string{"strata_compactions_total", "strata_rolls_total"} {
			v, err := metricSum(ctx, p.httpAddr, name)
			if err != nil {
				t.Fatalf("read %s from %s: %v", name, p.httpAddr, err)
			}
			now[i] = v
		}
		if now != last {
			last, changed = now, time.Now()
		}
		if last[0] > after && time.Since(changed) >= quiet {
			return last[0]
		}
		select {
		case <-ctx.Done():
			t.Fatalf("compaction did not settle before the deadline: %v passes (want more than %v), %v rolls (strata_compactions_total, strata_rolls_total)", last[0], after, last[1])
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// kv is a record of a compacted topic as a client read or wrote it; a nil
// Value is a tombstone.
type kv struct {
	Partition int32
	Offset    int64
	Key       string
	Value     *string
}

func (r kv) String() string {
	v := "<tombstone>"
	if r.Value != nil {
		v = strconv.Quote(*r.Value)
	}
	return fmt.Sprintf("p%d@%d %s=%s", r.Partition, r.Offset, r.Key, v)
}

// updateStream is the workload of the client tests: rounds of updates to
// keys keys in a shuffled order each round, some of them tombstones, so that
// some keys end deleted, some are deleted and written again, and most keys
// are overwritten many times. Key i goes to partition i % partitions.
func updateStream(keys, rounds int, partitions int32) []kv {
	var out []kv
	for r := 0; r < rounds; r++ {
		for j := 0; j < keys; j++ {
			i := (j*37 + r*11) % keys // a permutation per round (gcd(37, keys) = 1)
			k := kv{Partition: int32(i) % partitions, Key: fmt.Sprintf("key-%04d", i)}
			if (i*7+r*3)%11 != 0 {
				v := fmt.Sprintf("key-%04d=round-%02d-%s", i, r, strings.Repeat("v", (i+r)%23))
				k.Value = &v
			}
			out = append(out, k)
		}
	}
	return out
}

// latestValues is the value each key ends with (nil: deleted).
func latestValues(written []kv) map[string]*string {
	latest := map[string]*string{}
	for _, w := range written {
		latest[w.Key] = w.Value
	}
	return latest
}

// readStats is what checkCompactedRead found.
type readStats struct {
	records int // records read
	// Of the keys deleted last: how many read as a tombstone, and how
	// many are not there at all.
	tombstones, gone int
}

// checkCompactedRead checks a read of a compacted topic from offset 0: in
// each partition offsets strictly increase, each key stays in one
// partition, and the last record read for each key is its latest value (a
// deleted key is absent or its last record is a tombstone; with
// keepTombstones, delete.retention.ms has not passed and it must be a
// tombstone, as Kafka guarantees); no key that was never written shows up.
func checkCompactedRead(t *testing.T, what string, written, got []kv, keepTombstones bool) readStats {
	t.Helper()
	latest := latestValues(written)
	part := map[string]int32{}
	for _, w := range written {
		part[w.Key] = w.Partition
	}
	lastOff := map[int32]int64{}
	last := map[string]kv{}
	bad := 0
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf(what+": "+format, args...)
		if bad++; bad > 10 {
			t.Fatalf("%s: too many errors; stopping", what)
		}
	}
	for _, r := range got {
		if o, ok := lastOff[r.Partition]; ok && r.Offset <= o {
			fail("partition %d: offset %d read after %d", r.Partition, r.Offset, o)
		}
		lastOff[r.Partition] = r.Offset
		p, ok := part[r.Key]
		if !ok {
			fail("read a record nobody wrote: %v", r)
			continue
		}
		if p != r.Partition {
			fail("key %s written to partition %d, read from %d", r.Key, p, r.Partition)
		}
		last[r.Key] = r
	}
	st := readStats{records: len(got)}
	for k, v := range latest {
		r, ok := last[k]
		switch {
		case v == nil && !ok && keepTombstones:
			fail("key %s was deleted last, within delete.retention.ms, but no tombstone was read", k)
		case v == nil && !ok:
			st.gone++
		case v == nil && r.Value == nil:
			st.tombstones++
		case v == nil:
			fail("key %s was deleted last, but its last record read is %v", k, r)
		case !ok:
			fail("key %s (latest value %q) is missing", k, *v)
		case r.Value == nil:
			fail("key %s: last record read is a tombstone (%v), want its latest value %q", k, r, *v)
		case *r.Value != *v:
			fail("key %s: last record read is %v, want its latest value %q", k, r, *v)
		}
	}
	t.Logf("%s: %d records read of %d written; %d keys, %d of them deleted: %d read as a tombstone, %d gone",
		what, st.records, len(written), len(latest), st.tombstones+st.gone, st.tombstones, st.gone)
	return st
}

// TestCompactedTopicSarama plays a Kafka Connect or Schema Registry style
// store topic with sarama: its ClusterAdmin creates a compacted topic (and
// DescribeConfigs reads the configs back), a SyncProducer writes rounds of
// updates with tombstones over 300 keys, a key-less record is refused with
// INVALID_RECORD, and once compaction ran a PartitionConsumer reads every
// partition from offset 0: the latest value of every key, on the live node
// and on the node restarted with an empty data folder, where fewer records
// come back than were written.
func TestCompactedTopicSarama(t *testing.T) {
	ctx := testContext(t)
	const partitions = 3
	node := startStatelessNode(t, ctx, 1)
	topic := "sarama-compacted-store"

	cfg := sarama.NewConfig()
	cfg.ClientID = "strata-e2e-compacted"
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Consumer.Return.Errors = true

	admin, err := sarama.NewClusterAdmin([]string{node.kafkaAddr}, cfg)
	if err != nil {
		t.Fatalf("sarama cluster admin: %v", err)
	}
	configs := compactedTopicConfigs(true)
	entries := map[string]*string{}
	for k, v := range configs {
		entries[k] = &v
	}
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1, ConfigEntries: entries}, false); err != nil {
		t.Fatalf("sarama CreateTopic %s with %v: %v", topic, configs, err)
	}
	got, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	if err != nil {
		t.Fatalf("sarama DescribeConfig %s: %v", topic, err)
	}
	checkDescribed(t, topic, got, configs)
	admin.Close()

	prod, err := sarama.NewSyncProducer([]string{node.kafkaAddr}, cfg)
	if err != nil {
		t.Fatalf("sarama producer: %v", err)
	}
	defer prod.Close()
	written := updateStream(300, 10, partitions)
	msgs := make([]*sarama.ProducerMessage, len(written))
	for i, w := range written {
		msgs[i] = &sarama.ProducerMessage{Topic: topic, Partition: w.Partition, Key: sarama.StringEncoder(w.Key)}
		if w.Value != nil {
			msgs[i].Value = sarama.StringEncoder(*w.Value)
		}
	}
	// A few hundred records a request, as a store's writer flushing.
	for from := 0; from < len(msgs); from += 250 {
		if err := prod.SendMessages(msgs[from:min(from+250, len(msgs))]); err != nil {
			t.Fatalf("sarama SendMessages: %v", err)
		}
	}
	next := map[int32]int64{}
	for i, m := range msgs {
		if m.Offset != next[m.Partition] {
			t.Fatalf("record %d (%v) acknowledged at offset %d of partition %d, want %d", i, written[i], m.Offset, m.Partition, next[m.Partition])
		}
		next[m.Partition]++
	}

	_, _, err = prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder("no key")})
	if !errors.Is(err, sarama.ErrInvalidRecord) {
		t.Errorf("producing a record without a key to a compacted topic: got error %v, want INVALID_RECORD (%v)", err, sarama.ErrInvalidRecord)
	}

	passes := waitCompacted(t, ctx, node, 0)
	read := func(what string) readStats {
		t.Helper()
		recs := saramaReadAll(t, ctx, node.kafkaAddr, cfg, topic, partitions)
		return checkCompactedRead(t, what, written, recs, true)
	}
	read("live node")
	node = restartEmpty(t, node)
	if st := read("restarted on an empty data folder"); st.records >= len(written) {
		t.Errorf("after %v compaction passes a read from offset 0 returned %d records, all %d written: nothing was compacted", passes, st.records, len(written))
	}
}

// checkDescribed fails unless the described configs hold want.
func checkDescribed(t *testing.T, topic string, got []sarama.ConfigEntry, want map[string]string) {
	t.Helper()
	have := map[string]string{}
	for _, e := range got {
		have[e.Name] = e.Value
	}
	for k, v := range want {
		if have[k] != v {
			t.Errorf("DescribeConfigs %s: %s = %q, want %q", topic, k, have[k], v)
		}
	}
}

// saramaReadAll reads every partition of topic from the oldest offset up to
// its high watermark with a sarama PartitionConsumer.
func saramaReadAll(t *testing.T, ctx context.Context, addr string, cfg *sarama.Config, topic string, partitions int32) []kv {
	t.Helper()
	client, err := sarama.NewClient([]string{addr}, cfg)
	if err != nil {
		t.Fatalf("sarama client: %v", err)
	}
	defer client.Close()
	cons, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatalf("sarama consumer: %v", err)
	}
	defer cons.Close()
	var out []kv
	for p := int32(0); p < partitions; p++ {
		hw, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatalf("sarama GetOffset %s[%d]: %v", topic, p, err)
		}
		pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("sarama ConsumePartition %s[%d]: %v", topic, p, err)
		}
		for off := int64(-1); off < hw-1; {
			select {
			case m := <-pc.Messages():
				r := kv{Partition: m.Partition, Offset: m.Offset, Key: string(m.Key)}
				if m.Value != nil {
					v := string(m.Value)
					r.Value = &v
				}
				out = append(out, r)
				off = m.Offset
			case err := <-pc.Errors():
				t.Fatalf("sarama partition %d: %v", p, err)
			case <-time.After(stallTimeout):
				t.Fatalf("sarama partition %d: read up to offset %d of high watermark %d, then nothing for %v", p, off, hw, stallTimeout)
			case <-ctx.Done():
				t.Fatalf("sarama partition %d: read up to offset %d of high watermark %d before the deadline", p, off, hw)
			}
		}
		if err := pc.Close(); err != nil {
			t.Errorf("close sarama partition consumer %d: %v", p, err)
		}
	}
	return out
}

// compactedJSRec is a record as compacted.js takes or reports it.
type compactedJSRec struct {
	Partition int32   `json:"partition"`
	Offset    string  `json:"offset,omitempty"` // kafkajs keeps int64 offsets as strings
	Key       *string `json:"key"`
	Value     *string `json:"value"`
}

// compactedJSProduced is compacted.js produce's output.
type compactedJSProduced struct {
	Version string            `json:"version"`
	Configs map[string]string `json:"configs"`
	Acked   []compactedJSRec  `json:"acked"`
	NullKey *struct {
		Name      string `json:"name"`
		Type      string `json:"type"`
		Code      int    `json:"code"`
		Retriable bool   `json:"retriable"`
		Message   string `json:"message"`
	} `json:"nullKey"`
}

// TestCompactedTopicKafkajs is TestCompactedTopicSarama with kafkajs
// (testdata/kafkajs/compacted.js) and delete.retention.ms=0: its admin
// creates the compacted topic and describes its configs, its producer
// writes the updates and tombstones (acks=-1) and gets INVALID_RECORD for a
// key-less record. Once compaction ran it writes one more round to the keys
// that are not deleted, so that a later pass finds the tombstones in the
// cleaned part and removes them. A kafkajs consumer group then reads the
// topic from offset 0, on the live node and on the node restarted with an
// empty data folder, where fewer records come back than were written and
// deleted keys are gone.
func TestCompactedTopicKafkajs(t *testing.T) {
	nodeBin := requireTool(t, "node")
	env := []string{"NODE_PATH=" + nodePath(t), "KAFKAJS_NO_PARTITIONER_WARNING=1"}
	ctx := testContext(t)
	const partitions = 3
	node := startStatelessNode(t, ctx, 1)
	topic := "kafkajs-compacted-store"
	configs := compactedTopicConfigs(false)
	script := func(mode string, stdin []byte, opts map[string]any) string {
		t.Helper()
		c := map[string]any{
			"broker": node.kafkaAddr, "topic": topic, "partitions": partitions,
			"configs": configs, "timeoutMs": 40000,
		}
		for k, v := range opts {
			c[k] = v
		}
		cfg, _ := json.Marshal(c)
		out, _ := runCmd(t, ctx, stdin, env, nodeBin, "testdata/kafkajs/compacted.js", mode, string(cfg))
		return out
	}
	next := map[int32]int64{} // per partition: the offset the next record gets
	produce := func(rs []kv, first bool) compactedJSProduced {
		t.Helper()
		in := make([]compactedJSRec, len(rs))
		for i, w := range rs {
			in[i] = compactedJSRec{Partition: w.Partition, Key: &w.Key, Value: w.Value}
		}
		stdin, _ := json.Marshal(in)
		var res compactedJSProduced
		if out := script("produce", stdin, map[string]any{"create": first, "nullKey": first}); json.Unmarshal([]byte(out), &res) != nil {
			t.Fatalf("compacted.js produce output is not JSON:\n%s", tail(out))
		}
		if res.Version != "2.2.4" {
			t.Fatalf("kafkajs version %q, want 2.2.4: %s", res.Version, setupHint)
		}
		if len(res.Acked) != len(rs) {
			t.Fatalf("kafkajs acknowledged %d records, want %d", len(res.Acked), len(rs))
		}
		for i, a := range res.Acked {
			if a.Partition != rs[i].Partition || a.Offset != strconv.FormatInt(next[a.Partition], 10) {
				t.Fatalf("record %d (%v) acknowledged at partition %d offset %s, want partition %d offset %d",
					i, rs[i], a.Partition, a.Offset, rs[i].Partition, next[rs[i].Partition])
			}
			next[a.Partition]++
		}
		return res
	}

	written := updateStream(300, 10, partitions)
	res := produce(written, true)
	for k, v := range configs {
		if res.Configs[k] != v {
			t.Errorf("kafkajs describeConfigs %s: %s = %q, want %q", topic, k, res.Configs[k], v)
		}
	}
	switch nk := res.NullKey; {
	case nk == nil:
		t.Errorf("kafkajs produced a record without a key to a compacted topic; want INVALID_RECORD")
	case nk.Type != "INVALID_RECORD" || nk.Code != 87:
		t.Errorf("kafkajs producing a record without a key: %s %s (code %d): %s; want INVALID_RECORD (87)", nk.Name, nk.Type, nk.Code, nk.Message)
	}
	passes := waitCompacted(t, ctx, node, 0)

	// One more round, to the keys that are not deleted only.
	var more []kv
	latest := latestValues(written)
	for _, w := range updateStream(300, 11, partitions)[len(written):] {
		if latest[w.Key] != nil && w.Value != nil {
			more = append(more, w)
		}
	}
	produce(more, false)
	written = append(written, more...)
	passes = waitCompacted(t, ctx, node, passes)

	read := func(what, group string) readStats {
		t.Helper()
		var rr struct {
			Records []compactedJSRec  `json:"records"`
			Highs   map[string]string `json:"highs"`
		}
		if out := script("read", nil, map[string]any{"groupId": group}); json.Unmarshal([]byte(out), &rr) != nil {
			t.Fatalf("compacted.js read output is not JSON:\n%s", tail(out))
		}
		for p, h := range rr.Highs {
			if want := strconv.FormatInt(next[int32(mustAtoi(t, p))], 10); h != want {
				t.Errorf("%s: kafkajs admin reports high watermark %s for partition %s, want %s", what, h, p, want)
			}
		}
		recs := make([]kv, len(rr.Records))
		for i, r := range rr.Records {
			off, err := strconv.ParseInt(r.Offset, 10, 64)
			if err != nil || r.Key == nil {
				t.Fatalf("%s: kafkajs record %d: offset %q, key %v", what, i, r.Offset, r.Key)
			}
			recs[i] = kv{Partition: r.Partition, Offset: off, Key: *r.Key, Value: r.Value}
		}
		return checkCompactedRead(t, what, written, recs, false)
	}
	read("live node", "kafkajs-compacted-reader-1")
	node = restartEmpty(t, node)
	st := read("restarted on an empty data folder", "kafkajs-compacted-reader-2")
	if st.records >= len(written) {
		t.Errorf("after %v compaction passes a read from offset 0 returned %d records, all %d written: nothing was compacted", passes, st.records, len(written))
	}
	if st.gone == 0 {
		t.Errorf("delete.retention.ms=0 and a pass after the one that cleaned the tombstones, yet all %d deleted keys still read as a tombstone", st.tombstones)
	}
}

// mustAtoi parses a partition number.
func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}

// gokaSaramaConfig is goka's own default sarama config (sarama's
// protocol version 2.0, snappy, acks=1, goka's copartitioning strategy),
// reading input streams from the oldest offset so that no input emitted
// before the processor joined is missed. Each builder gets its own copy:
// goka's builders set ClientID and the partitioner on the one they get.
func gokaSaramaConfig() *sarama.Config {
	c := goka.DefaultConfig()
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	return c
}

// gokaTopicManagerConfig is goka's topic manager config for a one-broker
// cluster, failing (rather than ignoring, goka's default) when a topic
// exists with other partitions, replication or cleanup.policy than goka
// asks for.
func gokaTopicManagerConfig() *goka.TopicManagerConfig {
	tmc := goka.NewTopicManagerConfig()
	tmc.Table.Replication = 1
	tmc.Stream.Replication = 1
	tmc.MismatchBehavior = goka.TMConfigMismatchBehaviorFail
	return tmc
}

// TestGokaTableRestoresFromCompactedTopic runs a goka processor that keeps
// a count per key in its group table (goka.Persist) from an input stream
// of "inc" and "del" messages. goka's TopicManager creates the input stream
// and the table topic, which it makes compacted; the test shrinks the
// table's segment.bytes and segment.ms so compaction runs within seconds,
// and sets delete.retention.ms to 0 so that tombstones go too: once
// compaction ran, one more "inc" per counted key lets a later pass remove
// the tombstones of the deleted keys. Then the node is killed with kill -9
// and started again on
// an empty data folder (same etcd and object store), and a new processor
// with fresh local storage restores its table from the compacted table
// topic: every key has its count (deleted keys none), goka read fewer
// table records than the first processor wrote, and the processor goes on
// from its committed input offsets (one more "inc" per key adds exactly
// one).
func TestGokaTableRestoresFromCompactedTopic(t *testing.T) {
	ctx := testContext(t)
	const partitions, keys, rounds = 4, 200, 12
	node := startStatelessNode(t, ctx, 1)
	brokers := []string{node.kafkaAddr}
	group := goka.Group("goka-counter")
	input := goka.Stream("goka-counter-input")
	table := string(goka.GroupTable(group))

	logs := &tailBuffer{max: 256 << 10}
	logger := log.New(logs, "goka ", log.LstdFlags|log.Lmicroseconds)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("goka log (tail):\n%s", logs.String())
		}
	})

	// goka's TopicManager creates both topics: the stream with
	// cleanup.policy=delete, the table with cleanup.policy=compact.
	tm, err := goka.NewTopicManager(brokers, gokaSaramaConfig(), gokaTopicManagerConfig())
	if err != nil {
		t.Fatalf("goka topic manager: %v", err)
	}
	if err := tm.EnsureStreamExists(string(input), partitions); err != nil {
		t.Fatalf("goka EnsureStreamExists %s: %v", input, err)
	}
	if err := tm.EnsureTableExists(table, partitions); err != nil {
		t.Fatalf("goka EnsureTableExists %s: %v", table, err)
	}
	tm.Close()
	// IncrementalAlterConfigs needs protocol version 2.3; goka's config
	// says 2.0, so sarama would not send it.
	adminCfg := sarama.NewConfig()
	adminCfg.Version = sarama.V3_6_0_0
	admin, err := sarama.NewClusterAdmin(brokers, adminCfg)
	if err != nil {
		t.Fatalf("sarama cluster admin: %v", err)
	}
	defer admin.Close()
	describe := func(topic string, want map[string]string) {
		t.Helper()
		got, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
		if err != nil {
			t.Fatalf("DescribeConfig %s: %v", topic, err)
		}
		checkDescribed(t, topic, got, want)
	}
	describe(string(input), map[string]string{"cleanup.policy": "delete"})
	describe(table, map[string]string{"cleanup.policy": "compact"})
	configs := compactedTopicConfigs(false)
	alter := map[string]sarama.IncrementalAlterConfigsEntry{}
	for k, v := range configs {
		if k != "cleanup.policy" {
			alter[k] = sarama.IncrementalAlterConfigsEntry{Operation: sarama.IncrementalAlterConfigsOperationSet, Value: &v}
		}
	}
	if err := admin.IncrementalAlterConfig(sarama.TopicResource, table, alter, false); err != nil {
		t.Fatalf("IncrementalAlterConfigs %s: %v", table, err)
	}
	describe(table, configs)

	// The processor: "inc" adds one to the key's count, "del" deletes the
	// key (a tombstone in the table topic). Each input message is one table
	// write.
	gg := goka.DefineGroup(group,
		goka.Input(input, new(codec.String), func(ctx goka.Context, msg any) {
			if msg.(string) == "del" {
				ctx.Delete()
				return
			}
			var n int64
			if v := ctx.Value(); v != nil {
				n = v.(int64)
			}
			ctx.SetValue(n + 1)
		}),
		goka.Persist(new(codec.Int64)),
	)
	type running struct {
		proc     *goka.Processor
		stop     context.CancelFunc
		done     chan struct{} // closed when Run returned
		err      *error        // what Run returned
		restored *atomic.Int64 // table records goka read while restoring
	}
	startProcessor := func(name string) running {
		t.Helper()
		restored := new(atomic.Int64)
		// goka calls the update callback for each table record it
		// restores local storage from.
		count := func(uctx goka.UpdateContext, s storage.Storage, key string, value []byte) error {
			restored.Add(1)
			return goka.DefaultUpdate(uctx, s, key, value)
		}
		proc, err := goka.NewProcessor(brokers, gg,
			goka.WithTopicManagerBuilder(goka.TopicManagerBuilderWithConfig(gokaSaramaConfig(), gokaTopicManagerConfig())),
			goka.WithConsumerGroupBuilder(goka.ConsumerGroupBuilderWithConfig(gokaSaramaConfig())),
			goka.WithConsumerSaramaBuilder(goka.SaramaConsumerBuilderWithConfig(gokaSaramaConfig())),
			goka.WithProducerBuilder(goka.ProducerBuilderWithConfig(gokaSaramaConfig())),
			goka.WithStorageBuilder(storage.DefaultBuilder(t.TempDir())), // fresh local storage
			goka.WithUpdateCallback(count),
			goka.WithLogger(log.New(logs, "goka "+name+" ", log.LstdFlags|log.Lmicroseconds)),
		)
		if err != nil {
			t.Fatalf("goka processor %s: %v", name, err)
		}
		pctx, stop := context.WithCancel(ctx)
		r := running{proc: proc, stop: stop, done: make(chan struct{}), err: new(error), restored: restored}
		go func() {
			*r.err = proc.Run(pctx)
			close(r.done)
		}()
		t.Cleanup(func() {
			stop()
			select {
			case <-r.done:
			case <-time.After(30 * time.Second):
			}
		})
		if err := proc.WaitForReadyContext(ctx); err != nil {
			t.Fatalf("goka processor %s not ready: %v", name, err)
		}
		select {
		case <-r.done:
			t.Fatalf("goka processor %s stopped while starting: %v", name, *r.err)
		default:
		}
		return r
	}
	stopProcessor := func(r running, name string) {
		t.Helper()
		r.stop()
		select {
		case <-r.done:
			if *r.err != nil {
				t.Fatalf("goka processor %s: %v", name, *r.err)
			}
		case <-ctx.Done():
			t.Fatalf("goka processor %s did not stop", name)
		}
	}

	// emit sends one round of messages (one per key) and waits for all
	// of them: within a round no key repeats, so the order of a key's
	// messages is the order of the rounds.
	emit := func(round map[string]string) {
		t.Helper()
		em, err := goka.NewEmitter(brokers, input, new(codec.String),
			goka.WithEmitterProducerBuilder(goka.ProducerBuilderWithConfig(gokaSaramaConfig())),
			goka.WithEmitterLogger(logger),
		)
		if err != nil {
			t.Fatalf("goka emitter: %v", err)
		}
		var (
			mu   sync.Mutex
			errs []error
		)
		for k, v := range round {
			pr, err := em.Emit(k, v)
			if err != nil {
				t.Fatalf("goka emit %s=%s: %v", k, v, err)
			}
			pr.Then(func(err error) {
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("emit %s=%s: %w", k, v, err))
					mu.Unlock()
				}
			})
		}
		if err := em.Finish(); err != nil {
			t.Fatalf("goka emitter finish: %v", err)
		}
		if len(errs) > 0 {
			t.Fatalf("%d goka emits failed; first: %v", len(errs), errs[0])
		}
	}
	key := func(i int) string { return fmt.Sprintf("user-%04d", i) }
	want := map[string]int64{} // absent: no count (deleted or never counted)
	written := 0               // table writes: one per input message
	var roundsSent []map[string]string
	for r := 0; r < rounds; r++ {
		round := map[string]string{}
		for i := 0; i < keys; i++ {
			if (i*5+r*7)%13 == 0 {
				round[key(i)] = "del"
				delete(want, key(i))
			} else {
				round[key(i)] = "inc"
				want[key(i)]++
			}
		}
		roundsSent = append(roundsSent, round)
		written += len(round)
	}
	deleted := keys - len(want)
	if deleted == 0 {
		t.Fatal("the workload deletes no key last")
	}

	// checkTable compares every key's value in proc's table with want.
	checkTable := func(proc *goka.Processor, want map[string]int64) []string {
		var bad []string
		for i := 0; i < keys; i++ {
			v, err := proc.Get(key(i))
			w, ok := want[key(i)]
			switch {
			case err != nil:
				bad = append(bad, fmt.Sprintf("%s: %v", key(i), err))
			case !ok && v != nil:
				bad = append(bad, fmt.Sprintf("%s = %v, want deleted", key(i), v))
			case ok && v == nil:
				bad = append(bad, fmt.Sprintf("%s missing, want %d", key(i), w))
			case ok && v.(int64) != w:
				bad = append(bad, fmt.Sprintf("%s = %d, want %d", key(i), v.(int64), w))
			}
		}
		return bad
	}
	waitTable := func(proc *goka.Processor, what string, want map[string]int64) {
		t.Helper()
		for {
			bad := checkTable(proc, want)
			if len(bad) == 0 {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s: %d of %d keys wrong before the deadline, e.g. %s", what, len(bad), keys, strings.Join(bad[:min(5, len(bad))], "; "))
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	tableEnd := func() int64 {
		t.Helper()
		cl, err := sarama.NewClient(brokers, gokaSaramaConfig())
		if err != nil {
			t.Fatalf("sarama client: %v", err)
		}
		defer cl.Close()
		var sum int64
		for p := int32(0); p < partitions; p++ {
			hw, err := cl.GetOffset(table, p, sarama.OffsetNewest)
			if err != nil {
				t.Fatalf("GetOffset %s[%d]: %v", table, p, err)
			}
			sum += hw
		}
		return sum
	}

	p1 := startProcessor("first")
	for _, round := range roundsSent {
		emit(round)
	}
	waitTable(p1.proc, "first processor", want)
	passes := waitCompacted(t, ctx, node, 0)
	// One more round to the keys that still have a count: a pass over it
	// finds the tombstones in the cleaned part and, delete.retention.ms
	// being 0, removes them.
	last := map[string]string{}
	for k := range want {
		last[k] = "inc"
		want[k]++
	}
	emit(last)
	written += len(last)
	waitTable(p1.proc, "first processor, last round", want)
	// Every input message's table write is acknowledged before goka
	// commits its offset; wait for the last ones before stopping.
	for tableEnd() < int64(written) {
		select {
		case <-ctx.Done():
			t.Fatalf("table topic %s holds %d records, want %d", table, tableEnd(), written)
		case <-time.After(100 * time.Millisecond):
		}
	}
	stopProcessor(p1, "first")
	if n := tableEnd(); n != int64(written) {
		t.Fatalf("table topic %s holds %d records; the processor handled %d input messages, each one table write", table, n, written)
	}
	passes = waitCompacted(t, ctx, node, passes)

	node = restartEmpty(t, node)
	brokers = []string{node.kafkaAddr}
	if n := tableEnd(); n != int64(written) {
		t.Fatalf("after the restart the table topic %s ends at %d, want %d", table, n, written)
	}

	p2 := startProcessor("restored")
	if bad := checkTable(p2.proc, want); len(bad) > 0 {
		t.Fatalf("the table restored from the compacted topic has %d of %d keys wrong, e.g. %s", len(bad), keys, strings.Join(bad[:min(5, len(bad))], "; "))
	}
	restored := p2.restored.Load()
	t.Logf("goka restored %d table records of the %d written (%d keys, %d of them deleted) after %v compaction passes", restored, written, keys, deleted, passes)
	if restored >= int64(written) {
		t.Errorf("goka restored %d table records, all %d written: the table topic was not compacted", restored, written)
	}
	if restored < int64(keys-deleted) {
		t.Errorf("goka restored %d table records, fewer than the %d keys that have a value", restored, keys-deleted)
	}

	// The processor goes on from the committed input offsets: one more
	// "inc" per key adds exactly one (a replayed input would add more).
	more := map[string]string{}
	for i := 0; i < keys; i++ {
		more[key(i)] = "inc"
		want[key(i)]++
	}
	emit(more)
	waitTable(p2.proc, "restored processor after one more round", want)
	time.Sleep(time.Second) // a replay would show by now
	if bad := checkTable(p2.proc, want); len(bad) > 0 {
		t.Fatalf("restored processor: %d keys changed after reaching their counts (input replayed?), e.g. %s", len(bad), strings.Join(bad[:min(5, len(bad))], "; "))
	}
	stopProcessor(p2, "restored")
}
