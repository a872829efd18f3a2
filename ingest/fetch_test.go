package ingest

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/segment/kbatch"
)

// produceN appends count acks=all batches of 2 records each to topic/0.
func produceN(t *testing.T, c *client, topic string, count int) {
	t.Helper()
	for i := range count {
		resp := roundTrip[*kmsg.ProduceResponse](c, produceReq(9, -1, topic, 0, batch(t, fmt.Sprintf("b%d", i), 2, kbatch.BuildOptions{})))
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("produce: %v", kerr.ErrorForCode(code))
		}
	}
}

// records decodes every record in a fetch partition's batches.
func records(t *testing.T, b []byte) []kbatch.Record {
	t.Helper()
	var out []kbatch.Record
	err := kbatch.Iterate(b, func(_ kbatch.Header, batch []byte) error {
		recs, err := kbatch.Records(batch)
		out = append(out, recs...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFetchReadsWhatWasProduced(t *testing.T) {
	n := startNode(t, nil)
	tp := n.createTopic("events", 1)
	c := n.dial()
	produceN(t, c, "events", 3)
	for _, v := range []int16{4, 7, 11, 12, 13, 16, 18} {
		for _, from := range []int64{0, 3} {
			resp := roundTrip[*kmsg.FetchResponse](c, fetchReq(v, "events", tp.ID, 0, from, 100, 1))
			if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
				t.Fatalf("v%d: %+v", v, resp)
			}
			if v >= 13 && resp.Topics[0].TopicID != tp.ID {
				t.Fatalf("v%d: topic id %x, want %x", v, resp.Topics[0].TopicID, tp.ID)
			}
			if v >= 7 && resp.SessionID != 0 {
				t.Fatalf("v%d: session id %d, want 0 (sessionless)", v, resp.SessionID)
			}
			sp := resp.Topics[0].Partitions[0]
			if sp.ErrorCode != 0 || sp.HighWatermark != 6 || sp.LastStableOffset != 6 || (v >= 5 && sp.LogStartOffset != 0) {
				t.Fatalf("v%d: partition %+v", v, sp)
			}
			recs := records(t, sp.RecordBatches)
			// Whole batches: from offset 3 we get the batch holding it.
			first := from - from%2
			if len(recs) != int(6-first) || recs[0].Offset != first || string(recs[len(recs)-1].Value) != "b2-1" {
				t.Fatalf("v%d from %d: %d records starting at %d", v, from, len(recs), recs[0].Offset)
			}
		}
	}
}

func TestFetchErrors(t *testing.T) {
	n := startNode(t, nil)
	tp := n.createTopic("errs", 1)
	c := n.dial()
	produceN(t, c, "errs", 1)
	part, err := n.tier.Partition(t.Context(), topicPartition("errs", 0))
	if err != nil {
		t.Fatal(err)
	}
	epoch := part.LeaderEpoch()
	older := epoch - 1
	if older == -1 { // -1 means "not given"; any other lower epoch is fenced
		older = -2
	}

	tests := []struct {
		name  string
		v     int16
		topic string
		id    [16]byte
		part  int32
		off   int64
		mod   func(*kmsg.FetchRequest)
		want  int16
	}{
		{"offset past the end", 11, "errs", tp.ID, 0, 100, nil, kerr.OffsetOutOfRange.Code},
		{"negative offset", 11, "errs", tp.ID, 0, -5, nil, kerr.OffsetOutOfRange.Code},
		{"unknown topic", 11, "nope", tp.ID, 0, 0, nil, kerr.UnknownTopicOrPartition.Code},
		{"unknown partition", 11, "errs", tp.ID, 7, 0, nil, kerr.UnknownTopicOrPartition.Code},
		{"unknown topic id", 13, "", [16]byte{9}, 0, 0, nil, kerr.UnknownTopicID.Code},
		{"leader epoch from the future", 11, "errs", tp.ID, 0, 0, func(r *kmsg.FetchRequest) { r.Topics[0].Partitions[0].CurrentLeaderEpoch = epoch + 1 }, kerr.UnknownLeaderEpoch.Code},
		{"fenced leader epoch", 11, "errs", tp.ID, 0, 0, func(r *kmsg.FetchRequest) { r.Topics[0].Partitions[0].CurrentLeaderEpoch = older }, kerr.FencedLeaderEpoch.Code},
		{"current leader epoch", 11, "errs", tp.ID, 0, 0, func(r *kmsg.FetchRequest) { r.Topics[0].Partitions[0].CurrentLeaderEpoch = epoch }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := fetchReq(tt.v, tt.topic, tt.id, tt.part, tt.off, 5000, 1)
			if tt.mod != nil {
				tt.mod(req)
			}
			start := time.Now()
			resp := roundTrip[*kmsg.FetchResponse](c, req)
			if got := resp.Topics[0].Partitions[0].ErrorCode; got != tt.want {
				t.Fatalf("error %v, want %v", kerr.ErrorForCode(got), kerr.ErrorForCode(tt.want))
			}
			// An error answers at once rather than waiting out MaxWait.
			if d := time.Since(start); tt.want != 0 && d > 2*time.Second {
				t.Fatalf("error answered after %v", d)
			}
		})
	}
}

// TestFetchSessions: we keep no sessions. A full fetch (epoch 0 or -1) is
// answered with session id 0; an incremental one is
// FETCH_SESSION_ID_NOT_FOUND, as from a Kafka broker with no session slots.
func TestFetchSessions(t *testing.T) {
	n := startNode(t, nil)
	tp := n.createTopic("sess", 1)
	c := n.dial()
	produceN(t, c, "sess", 1)
	for _, tc := range []struct {
		id, epoch int32
		want      int16
	}{{0, 0, 0}, {0, -1, 0}, {5, -1, 0}, {5, 0, 0}, {5, 1, kerr.FetchSessionIDNotFound.Code}, {0, 3, kerr.FetchSessionIDNotFound.Code}} {
		req := fetchReq(12, "sess", tp.ID, 0, 0, 100, 1)
		req.SessionID, req.SessionEpoch = tc.id, tc.epoch
		resp := roundTrip[*kmsg.FetchResponse](c, req)
		if resp.ErrorCode != tc.want || resp.SessionID != 0 {
			t.Fatalf("session %d epoch %d: error %d session %d, want error %d session 0", tc.id, tc.epoch, resp.ErrorCode, resp.SessionID, tc.want)
		}
		if tc.want == 0 && len(records(t, resp.Topics[0].Partitions[0].RecordBatches)) != 2 {
			t.Fatalf("session %d epoch %d: full fetch did not return the records", tc.id, tc.epoch)
		}
		if tc.want != 0 && len(resp.Topics) != 0 {
			t.Fatalf("session error with %d topics", len(resp.Topics))
		}
	}
}

// TestFetchLongPoll: a fetch at the end waits for data and is answered as
// soon as a produce on another connection becomes durable, not at MaxWait.
func TestFetchLongPoll(t *testing.T) {
	n := startNode(t, nil)
	tp := n.createTopic("poll", 1)
	consumer, producer := n.dial(), n.dial()

	corr := consumer.send(fetchReq(11, "poll", tp.ID, 0, 0, 20_000, 1))
	start := time.Now()
	// Let the fetch find nothing and park before producing; nothing in the
	// result depends on it, so a late park only makes the test weaker.
	waitFor(t, func() bool { return inflight(n.srv) >= 2 })
	produceN(t, producer, "poll", 1)
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = 11
	consumer.recv(corr, resp)
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("long poll answered after %v, want soon after the produce", d)
	}
	if recs := records(t, resp.Topics[0].Partitions[0].RecordBatches); len(recs) != 2 {
		t.Fatalf("got %d records, want 2", len(recs))
	}

	// With nothing to wake it, it waits MaxWait and answers empty.
	start = time.Now()
	empty := roundTrip[*kmsg.FetchResponse](consumer, fetchReq(11, "poll", tp.ID, 0, 2, 300, 1))
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("empty fetch answered after %v, before MaxWait", d)
	}
	if sp := empty.Topics[0].Partitions[0]; sp.ErrorCode != 0 || len(sp.RecordBatches) != 0 || sp.HighWatermark != 2 {
		t.Fatalf("empty fetch: %+v", sp)
	}
}

// TestFetchMaxBytes: the response limit stops after the first partition
// with data (which is returned whole even when larger); the partition limit
// caps each partition.
func TestFetchMaxBytes(t *testing.T) {
	n := startNode(t, nil)
	tp := n.createTopic("limits", 2)
	c := n.dial()
	for p := range int32(2) {
		for range 3 {
			resp := roundTrip[*kmsg.ProduceResponse](c, produceReq(9, -1, "limits", p, batch(t, "x", 5, kbatch.BuildOptions{})))
			if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
				t.Fatal(kerr.ErrorForCode(code))
			}
		}
	}
	one := len(batch(t, "x", 5, kbatch.BuildOptions{}))

	req := fetchReq(11, "limits", tp.ID, 0, 0, 100, 1)
	rp := req.Topics[0].Partitions[0]
	rp.Partition = 1
	req.Topics[0].Partitions = append(req.Topics[0].Partitions, rp)
	req.MaxBytes = 1 // below one batch
	resp := roundTrip[*kmsg.FetchResponse](c, req)
	p0, p1 := resp.Topics[0].Partitions[0], resp.Topics[0].Partitions[1]
	if len(p0.RecordBatches) != one || len(p1.RecordBatches) != 0 || p1.HighWatermark != 15 {
		t.Fatalf("MaxBytes 1: partition 0 got %d bytes (want one batch, %d), partition 1 %d bytes, hw %d", len(p0.RecordBatches), one, len(p1.RecordBatches), p1.HighWatermark)
	}

	req.MaxBytes = 50 << 20
	req.Topics[0].Partitions[0].PartitionMaxBytes = int32(2*one + 1)
	req.Topics[0].Partitions[1].PartitionMaxBytes = 1
	resp = roundTrip[*kmsg.FetchResponse](c, req)
	p0, p1 = resp.Topics[0].Partitions[0], resp.Topics[0].Partitions[1]
	if len(p0.RecordBatches) != 2*one || len(p1.RecordBatches) != 0 {
		t.Fatalf("partition limits: got %d and %d bytes, want %d and 0", len(p0.RecordBatches), len(p1.RecordBatches), 2*one)
	}
}
