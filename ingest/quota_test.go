package ingest

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/segment/kbatch"
)

func alterQuota(t *testing.T, c *client, typ string, name *string, key string, value float64, remove bool) *kmsg.AlterClientQuotasResponse {
	t.Helper()
	req := kmsg.NewPtrAlterClientQuotasRequest()
	e := kmsg.NewAlterClientQuotasRequestEntry()
	en := kmsg.NewAlterClientQuotasRequestEntryEntity()
	en.Type, en.Name = typ, name
	e.Entity = append(e.Entity, en)
	op := kmsg.NewAlterClientQuotasRequestEntryOp()
	op.Key, op.Value, op.Remove = key, value, remove
	e.Ops = append(e.Ops, op)
	req.Entries = append(req.Entries, e)
	return roundTrip[*kmsg.AlterClientQuotasResponse](c, req)
}

// A client over its producer_byte_rate gets throttle_time_ms, from the
// quota of its client id; quotas are described back, bad ones refused,
// and a removed quota stops the throttling.
func TestClientQuotasThrottleProducers(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic("q", 1)
	c := n.dial() // client id "ingest-test"
	id := "ingest-test"
	if r := alterQuota(t, c, "client-id", &id, quotaProduce, 20000, false); r.Entries[0].ErrorCode != 0 {
		t.Fatalf("alter: %v", kerr.ErrorForCode(r.Entries[0].ErrorCode))
	}
	for _, bad := range []struct {
		typ   string
		key   string
		value float64
	}{{"client-id", "request_percentage", 50}, {"ip", quotaProduce, 1}, {"team", quotaProduce, 1}, {"client-id", quotaFetch, -5}} {
		if r := alterQuota(t, c, bad.typ, &id, bad.key, bad.value, false); r.Entries[0].ErrorCode != kerr.InvalidRequest.Code {
			t.Errorf("%s %s=%v: error %d, want INVALID_REQUEST", bad.typ, bad.key, bad.value, r.Entries[0].ErrorCode)
		}
	}
	desc := kmsg.NewPtrDescribeClientQuotasRequest()
	comp := kmsg.NewDescribeClientQuotasRequestComponent()
	comp.EntityType, comp.MatchType, comp.Match = "client-id", 0, &id
	desc.Components = append(desc.Components, comp)
	waitFor(t, func() bool {
		d := roundTrip[*kmsg.DescribeClientQuotasResponse](c, desc)
		return len(d.Entries) == 1 && len(d.Entries[0].Values) == 1 && d.Entries[0].Values[0].Value == 20000
	})

	// 20 KB/s over an 11 s window: 300 KB at once is well over.
	big := batch(t, string(make([]byte, 1000)), 50, kbatch.BuildOptions{}) // ~50 KB
	throttled := 0
	for i := 0; i < 6; i++ {
		resp := roundTrip[*kmsg.ProduceResponse](c, produceReq(9, -1, "q", 0, big))
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("produce: %v", kerr.ErrorForCode(code))
		}
		if resp.ThrottleMillis > 0 {
			throttled++
		}
	}
	if throttled == 0 {
		t.Fatal("no produce response carried throttle_time_ms over the quota")
	}
	// Removed: no more throttling.
	alterQuota(t, c, "client-id", &id, quotaProduce, 0, true)
	waitFor(t, func() bool { _, q := n.meta.Quotas(); return len(q) == 0 })
	if resp := roundTrip[*kmsg.ProduceResponse](c, produceReq(9, -1, "q", 0, big)); resp.ThrottleMillis != 0 {
		t.Fatalf("throttled %d ms after the quota was removed", resp.ThrottleMillis)
	}
}

// BenchmarkProduceUnderQuota reports the rate a producer achieves against
// a 256 KiB/s producer_byte_rate quota (the client ignores throttle_time_ms,
// so this is the node's own muting at work): it should settle near the
// quota once the first window's burst (11 s of quota) is spent. Each
// iteration produces 4 MB.
func BenchmarkProduceUnderQuota(b *testing.B) {
	n := startNode(b, nil)
	topic := fmt.Sprintf("q-%d", b.N) // the harness runs this once per b.N on one cluster
	n.createTopic(topic, 1)
	c := n.dial()
	id := "ingest-test"
	req := kmsg.NewPtrAlterClientQuotasRequest()
	e := kmsg.NewAlterClientQuotasRequestEntry()
	en := kmsg.NewAlterClientQuotasRequestEntryEntity()
	en.Type, en.Name = "client-id", &id
	op := kmsg.NewAlterClientQuotasRequestEntryOp()
	op.Key, op.Value = quotaProduce, 256<<10
	e.Entity, e.Ops = append(e.Entity, en), append(e.Ops, op)
	req.Entries = append(req.Entries, e)
	roundTrip[*kmsg.AlterClientQuotasResponse](c, req)
	waitFor(b, func() bool { _, q := n.meta.Quotas(); return len(q) == 1 })
	big := batch(b, string(make([]byte, 1000)), 100, kbatch.BuildOptions{}) // ~100 KB
	var bytes, throttledMs int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := 0; j < 40; j++ {
			resp := roundTrip[*kmsg.ProduceResponse](c, produceReq(9, -1, topic, 0, big))
			bytes += int64(len(big))
			throttledMs += int64(resp.ThrottleMillis)
		}
	}
	b.ReportMetric(float64(bytes)/b.Elapsed().Seconds()/(1<<20), "MB/s")
	b.ReportMetric(0.25, "quota_MB/s")
	b.ReportMetric(float64(throttledMs)/float64(b.N), "throttle_ms/op")
}
