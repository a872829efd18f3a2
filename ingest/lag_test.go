package ingest

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/segment/kbatch"
)

// The lag monitor exports what the group left unconsumed, per partition,
// with its age, counts traffic per topic, and drops a group's series once
// its offsets are gone.
func TestLagMonitorAndTopicTraffic(t *testing.T) {
	n := startNode(t, func(c *Config) { c.LagInterval = -1 }) // sampled by hand
	n.createTopic("orders", 2)
	c := n.dial()
	for p := int32(0); p < 2; p++ {
		resp := roundTrip[*kmsg.ProduceResponse](c, produceReq(9, -1, "orders", p, batch(t, "v", 10, kbatch.BuildOptions{})))
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("produce to %d: error %d", p, code)
		}
	}
	time.Sleep(20 * time.Millisecond) // the records' age: some lag in seconds
	ctx := t.Context()
	if err := n.meta.CommitOffsets(ctx, "billing", map[metadata.TP]metadata.CommittedOffset{
		topicPartition("orders", 0): {Offset: 4, LeaderEpoch: -1},
		topicPartition("orders", 1): {Offset: 10, LeaderEpoch: -1},
	}); err != nil {
		t.Fatal(err)
	}
	// The watch brings the index entries into the cache the monitor reads.
	waitFor(t, func() bool { s, ok := n.meta.IndexSummary(topicPartition("orders", 1)); return ok && s.End == 10 })
	if err := n.srv.SampleLag(ctx); err != nil {
		t.Fatal(err)
	}
	lag := func(p string) float64 {
		return testutil.ToFloat64(n.srv.lag.lag.WithLabelValues("billing", "orders", p))
	}
	if l0, l1 := lag("0"), lag("1"); l0 != 6 || l1 != 0 {
		t.Fatalf("strata_consumer_group_lag: partition 0 %v, 1 %v; want 6 and 0", l0, l1)
	}
	if s := testutil.ToFloat64(n.srv.lag.seconds.WithLabelValues("billing", "orders", "0")); s < 0.02 || s > 60 {
		t.Fatalf("strata_consumer_group_lag_seconds of partition 0 = %v, want the age of offset 4 (>= 20ms)", s)
	}
	if s := testutil.ToFloat64(n.srv.lag.seconds.WithLabelValues("billing", "orders", "1")); s != 0 {
		t.Fatalf("lag seconds of a partition without lag = %v, want 0", s)
	}
	h, ok := n.srv.GroupLag("billing")
	if !ok || len(h) != 1 || h[0].Lag != 6 || len(h[0].Partitions) != 2 {
		t.Fatalf("GroupLag = %+v, %v", h, ok)
	}

	// Per-topic traffic: 20 records in; a fetch of partition 0 counts out.
	if in := testutil.ToFloat64(n.srv.traffic.recordsIn.WithLabelValues("orders")); in != 20 {
		t.Fatalf("strata_topic_records_in_total = %v, want 20", in)
	}
	topic, _ := n.meta.Topic("orders")
	roundTrip[*kmsg.FetchResponse](c, fetchReq(12, "orders", topic.ID, 0, 0, 0, 1))
	if out := testutil.ToFloat64(n.srv.traffic.recordsOut.WithLabelValues("orders")); out != 10 {
		t.Fatalf("strata_topic_records_out_total = %v, want 10", out)
	}
	var got PartitionCounts
	for _, pc := range n.srv.Traffic() {
		if pc.TP == topicPartition("orders", 0) {
			got = pc
		}
	}
	if got.RecordsIn != 10 || got.RecordsOut != 10 || got.BytesIn == 0 || got.BytesOut == 0 {
		t.Fatalf("Traffic of orders/0 = %+v", got)
	}

	// Offsets deleted: the group's series and history go.
	if err := n.meta.DeleteGroupOffsets(ctx, "billing"); err != nil {
		t.Fatal(err)
	}
	if err := n.srv.SampleLag(ctx); err != nil {
		t.Fatal(err)
	}
	if c := testutil.CollectAndCount(n.srv.lag.lag); c != 0 {
		t.Fatalf("%d lag series left after the group's offsets were deleted", c)
	}
	if _, ok := n.srv.GroupLag("billing"); ok {
		t.Fatal("history kept for a group without offsets")
	}
}

func TestCountRecords(t *testing.T) {
	b1 := batch(t, "a", 3, kbatch.BuildOptions{})
	b2 := batch(t, "b", 5, kbatch.BuildOptions{})
	both := append(append([]byte{}, b1...), b2...)
	if n := countRecords(both); n != 8 {
		t.Fatalf("countRecords = %d, want 8", n)
	}
	// A partial batch at the end (Fetch may cut one) is not counted.
	if n := countRecords(both[:len(both)-3]); n != 3 {
		t.Fatalf("countRecords with a cut batch = %d, want 3", n)
	}
	if n := countRecords([]byte{1, 2, 3}); n != 0 {
		t.Fatalf("countRecords of junk = %d", n)
	}
}
