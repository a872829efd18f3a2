package query_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/cmd/node"
	"github.com/strata-io/strata/metadata"
)

// TestArrowBlockBoundaries reads ranges that start and end inside runs of
// many blocks, which the reader walks block by block, skipping the blocks
// before the range without decompressing them and stopping at the first
// after it: runs of flush objects (a slow flush gathers many produce
// requests, a block each) and runs rolled into segment objects (zstd
// blocks of about segment.bytes).
func TestArrowBlockBoundaries(t *testing.T) {
	n := startNode(t, func(c *node.Config) {
		c.MaintenanceInterval = 50 * time.Millisecond
		c.FlushInterval = 100 * time.Millisecond
	})
	ctx := testContext(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.KafkaAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const parts = 2
	create := func(topic string, configs map[string]string) {
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, parts, 1
		for k, v := range configs {
			c := kmsg.NewCreateTopicsRequestTopicConfig()
			c.Name, c.Value = k, kmsg.StringPtr(v)
			rt.Configs = append(rt.Configs, c)
		}
		req.Topics = append(req.Topics, rt)
		if resp, err := req.RequestWith(ctx, cl); err != nil || resp.Topics[0].ErrorCode != 0 {
			t.Fatalf("create topic %s: %v %+v", topic, err, resp)
		}
	}
	// No retention: the records' timestamps are in the past.
	create("flushed", map[string]string{"retention.ms": "-1"})
	create("rolled", map[string]string{"retention.ms": "-1", "segment.bytes": "1024"})
	// Small batches make many blocks.
	small := kgo.ProducerBatchMaxBytes(2048)
	recs := map[string][]*kgo.Record{
		"flushed": produceWith(t, n.KafkaAddr(), "flushed", parts, 600, small),
		"rolled":  produceWith(t, n.KafkaAddr(), "rolled", parts, 600, small),
	}

	meta, err := metadata.Open(ctx, metadata.Config{Endpoints: n.EtcdEndpoints(), Cluster: node.DefaultConfig().Cluster}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close()
	// Wait until the beginning and the end of each partition were rolled.
	for deadline := time.Now().Add(time.Minute); ; {
		rolled := 0
		for p := range int32(parts) {
			for _, at := range []int64{0, 599} {
				e, _, ok, err := meta.EntryAt(ctx, metadata.TP{Topic: "rolled", Partition: p}, at, 600)
				if err == nil && ok && strings.HasPrefix(e.Object, "segments/") {
					rolled++
				}
			}
		}
		if rolled == 2*parts {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the roller did not roll the partitions into segments")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, topic := range []string{"flushed", "rolled"} {
		for _, c := range []struct {
			params url.Values
			keep   func(r *kgo.Record) bool
		}{
			{url.Values{}, nil},
			{url.Values{"from": {"137"}, "to": {"411"}}, func(r *kgo.Record) bool { return r.Offset >= 137 && r.Offset < 411 }},
			{url.Values{"partition": {"1"}, "from": {"599"}}, func(r *kgo.Record) bool { return r.Partition == 1 && r.Offset >= 599 }},
			{url.Values{"partition": {"0"}, "to": {"1"}}, func(r *kgo.Record) bool { return r.Partition == 0 && r.Offset < 1 }},
		} {
			got, _ := fetchHTTP(t, n.HTTPAddr(), topic, c.params)
			diffRows(t, topic+" "+fmt.Sprint(c.params), got, wantRows(recs[topic], c.keep))
		}
	}
}
