package ingest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
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

// fetchAt names a partition to fetch: by topic name (below v13) or id, from
// offset.
type fetchAt struct {
	topic string
	id    [16]byte
	p     int32
	off   int64
}

// sessionReq builds a fetch at version v for session id at epoch, naming
// parts (consecutive parts of one topic share its entry).
func sessionReq(v int16, id, epoch, maxWait int32, parts ...fetchAt) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version = v
	req.MaxWaitMillis = maxWait
	req.MinBytes = 1
	req.MaxBytes = 50 << 20
	req.SessionID, req.SessionEpoch = id, epoch
	for _, p := range parts {
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != p.topic || req.Topics[n-1].TopicID != p.id {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = p.topic, p.id
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p.p, p.off, 1<<20
		rt := &req.Topics[len(req.Topics)-1]
		rt.Partitions = append(rt.Partitions, rp)
	}
	return req
}

// forget adds ForgottenTopics to req.
func forget(req *kmsg.FetchRequest, topic string, id [16]byte, partitions ...int32) *kmsg.FetchRequest {
	ft := kmsg.NewFetchRequestForgottenTopic()
	ft.Topic, ft.TopicID, ft.Partitions = topic, id, partitions
	req.ForgottenTopics = append(req.ForgottenTopics, ft)
	return req
}

// answered lists a fetch response's partitions as "topic/partition" (the
// topic id in hex from v13), each once.
func answered(t *testing.T, resp *kmsg.FetchResponse) map[string]kmsg.FetchResponseTopicPartition {
	t.Helper()
	out := map[string]kmsg.FetchResponseTopicPartition{}
	for _, rt := range resp.Topics {
		name := rt.Topic
		if resp.Version >= 13 {
			name = fmt.Sprintf("%x", rt.TopicID)
		}
		for _, p := range rt.Partitions {
			k := fmt.Sprintf("%s/%d", name, p.Partition)
			if _, dup := out[k]; dup {
				t.Fatalf("%s answered twice", k)
			}
			out[k] = p
		}
	}
	return out
}

// keys returns m's keys, sorted.
func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestFetchSessions: KIP-227 by name (v12). A full fetch (epoch 0) opens a
// session; an incremental one names only what changed on the client's side
// and is answered with only what changed on ours (records, high watermark,
// log start, errors); ForgottenTopics leave; a wrong epoch, an unknown id or
// a v13 fetch of a by-name session are refused without touching it; epoch
// -1 closes it, epoch 0 replaces it.
func TestFetchSessions(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic("sess", 3)
	c := n.dial()
	produceN(t, c, "sess", 2) // partition 0: offsets 0..3
	stats := func(wantSessions, wantParts int) {
		t.Helper()
		if s, p := n.srv.fetchSessions.stats(); s != wantSessions || p != wantParts {
			t.Fatalf("cache holds %d sessions of %d partitions, want %d of %d", s, p, wantSessions, wantParts)
		}
	}
	produce1 := func(p int32, count int) {
		t.Helper()
		resp := roundTrip[*kmsg.ProduceResponse](c, produceReq(9, -1, "sess", p, batch(t, "p", count, kbatch.BuildOptions{})))
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatal(kerr.ErrorForCode(code))
		}
	}
	want := func(resp *kmsg.FetchResponse, id int32, parts ...string) map[string]kmsg.FetchResponseTopicPartition {
		t.Helper()
		got := answered(t, resp)
		if resp.ErrorCode != 0 || resp.SessionID != id || !slices.Equal(keys(got), parts) {
			t.Fatalf("error %v, session %d, partitions %v; want no error, session %d, partitions %v (%+v)",
				kerr.ErrorForCode(resp.ErrorCode), resp.SessionID, keys(got), id, parts, got)
		}
		return got
	}

	// Full: every partition is answered, and the session is opened.
	full := roundTrip[*kmsg.FetchResponse](c, sessionReq(12, 0, 0, 100, fetchAt{"sess", tp0, 0, 0}, fetchAt{"sess", tp0, 1, 0}))
	id := full.SessionID
	if id <= 0 {
		t.Fatalf("full fetch at epoch 0: session id %d, want a new one", id)
	}
	got := want(full, id, "sess/0", "sess/1")
	if len(records(t, got["sess/0"].RecordBatches)) != 4 || got["sess/1"].HighWatermark != 0 {
		t.Fatalf("full fetch: %+v", got)
	}
	stats(1, 2)

	// The client is at the end of partition 0 and names it there: nothing
	// changed, nothing is answered (after MaxWait).
	start := time.Now()
	want(roundTrip[*kmsg.FetchResponse](c, sessionReq(12, id, 1, 300, fetchAt{"sess", tp0, 0, 4})), id)
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("an incremental fetch with nothing new answered after %v, before MaxWait", d)
	}

	// Records on partition 1: it alone is answered, though not named,
	// and at once (a long poll on the session's partitions).
	produce1(1, 3)
	got = want(roundTrip[*kmsg.FetchResponse](c, sessionReq(12, id, 2, 5000)), id, "sess/1")
	if sp := got["sess/1"]; len(records(t, sp.RecordBatches)) != 3 || sp.HighWatermark != 3 {
		t.Fatalf("partition 1: %+v", sp)
	}

	// The client moves partition 1 on and adds partition 2: the new
	// partition is answered, partition 1 (nothing new) is not.
	got = want(roundTrip[*kmsg.FetchResponse](c, sessionReq(12, id, 3, 100, fetchAt{"sess", tp0, 1, 3}, fetchAt{"sess", tp0, 2, 0})), id, "sess/2")
	if sp := got["sess/2"]; sp.ErrorCode != 0 || sp.HighWatermark != 0 {
		t.Fatalf("partition 2: %+v", sp)
	}
	stats(1, 3)

	// The log start of partition 0 moves: answered, without records.
	if code := roundTrip[*kmsg.DeleteRecordsResponse](c, deleteRecordsReq(1, "sess", 0, 2)).Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("DeleteRecords: %v", kerr.ErrorForCode(code))
	}
	got = want(roundTrip[*kmsg.FetchResponse](c, sessionReq(12, id, 4, 100)), id, "sess/0")
	if sp := got["sess/0"]; sp.LogStartOffset != 2 || sp.HighWatermark != 4 || len(sp.RecordBatches) != 0 {
		t.Fatalf("partition 0 after DeleteRecords: %+v", sp)
	}

	// Forgotten partitions leave the session: records on partition 0 are
	// not answered any more.
	want(roundTrip[*kmsg.FetchResponse](c, forget(sessionReq(12, id, 5, 100), "sess", tp0, 0, 2)), id)
	stats(1, 1)
	produce1(0, 1)
	want(roundTrip[*kmsg.FetchResponse](c, sessionReq(12, id, 6, 200)), id)

	// Refused: no partitions, SessionID 0, the session as it was.
	other := id + 1
	if other <= 0 {
		other = 1
	}
	for _, tc := range []struct {
		v         int16
		id, epoch int32
		want      int16
	}{
		{12, id, 6, kerr.InvalidFetchSessionEpoch.Code}, // used already
		{12, id, 99, kerr.InvalidFetchSessionEpoch.Code},
		{12, other, 7, kerr.FetchSessionIDNotFound.Code},
		{12, 0, 7, kerr.FetchSessionIDNotFound.Code},
		{13, id, 7, kerr.FetchSessionTopicIDError.Code}, // a by-name session at v13
	} {
		resp := roundTrip[*kmsg.FetchResponse](c, sessionReq(tc.v, tc.id, tc.epoch, 100, fetchAt{"sess", tp0, 0, 0}))
		if resp.ErrorCode != tc.want || resp.SessionID != 0 || len(resp.Topics) != 0 {
			t.Fatalf("v%d session %d epoch %d: error %v, session %d, %d topics; want %v, 0, none", tc.v, tc.id, tc.epoch,
				kerr.ErrorForCode(resp.ErrorCode), resp.SessionID, len(resp.Topics), kerr.ErrorForCode(tc.want))
		}
	}
	stats(1, 1)
	produce1(1, 1)
	got = want(roundTrip[*kmsg.FetchResponse](c, sessionReq(12, id, 7, 5000)), id, "sess/1")
	if recs := records(t, got["sess/1"].RecordBatches); len(recs) != 1 || recs[0].Offset != 3 {
		t.Fatalf("after the refusals: %d records", len(recs))
	}

	// Epoch -1 closes the session: a full, sessionless answer.
	want(roundTrip[*kmsg.FetchResponse](c, sessionReq(12, id, -1, 100, fetchAt{"sess", tp0, 1, 0})), 0, "sess/1")
	stats(0, 0)
	if code := roundTrip[*kmsg.FetchResponse](c, sessionReq(12, id, 8, 100)).ErrorCode; code != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("a closed session: %v", kerr.ErrorForCode(code))
	}

	// Epoch 0 naming a live session replaces it.
	a := roundTrip[*kmsg.FetchResponse](c, sessionReq(12, 0, 0, 100, fetchAt{"sess", tp0, 0, 5})).SessionID
	b := roundTrip[*kmsg.FetchResponse](c, sessionReq(12, a, 0, 100, fetchAt{"sess", tp0, 0, 5})).SessionID
	if a <= 0 || b <= 0 || a == b {
		t.Fatalf("sessions %d then %d, want two new ones", a, b)
	}
	stats(1, 1)
	if code := roundTrip[*kmsg.FetchResponse](c, sessionReq(12, a, 1, 100)).ErrorCode; code != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("a replaced session: %v", kerr.ErrorForCode(code))
	}

	// A session may be used from another connection.
	want(roundTrip[*kmsg.FetchResponse](n.dial(), sessionReq(12, b, 1, 100)), b)

	// Forgetting every partition closes the session: SessionID 0.
	want(roundTrip[*kmsg.FetchResponse](c, forget(sessionReq(12, b, 2, 100), "sess", tp0, 0)), 0)
	stats(0, 0)
}

// tp0 is the zero topic id (fetches by name).
var tp0 [16]byte

// TestFetchSessionTopicIDs: a v13+ session names topics by id: partitions
// are added and forgotten by id, an unknown id is UNKNOWN_TOPIC_ID on every
// fetch until forgotten, and the session cannot be used below v13.
func TestFetchSessionTopicIDs(t *testing.T) {
	n := startNode(t, nil)
	ta := n.createTopic("ida", 2)
	tb := n.createTopic("idb", 1)
	unknown := [16]byte{0xee}
	c := n.dial()
	pr := produceReq(13, -1, "", 0, batch(t, "a", 2, kbatch.BuildOptions{}))
	pr.Topics[0].TopicID = ta.ID
	if code := roundTrip[*kmsg.ProduceResponse](c, pr).Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	a0, a1, b0 := fmt.Sprintf("%x/0", ta.ID[:]), fmt.Sprintf("%x/1", ta.ID[:]), fmt.Sprintf("%x/0", tb.ID[:])
	u0 := fmt.Sprintf("%x/0", unknown[:])
	check := func(resp *kmsg.FetchResponse, id int32, parts ...string) map[string]kmsg.FetchResponseTopicPartition {
		t.Helper()
		got := answered(t, resp)
		wantKeys := slices.Clone(parts)
		slices.Sort(wantKeys)
		if resp.ErrorCode != 0 || resp.SessionID != id || !slices.Equal(keys(got), wantKeys) {
			t.Fatalf("error %v, session %d, partitions %v; want no error, session %d, partitions %v",
				kerr.ErrorForCode(resp.ErrorCode), resp.SessionID, keys(got), id, wantKeys)
		}
		return got
	}

	var bOff int64 // idb/0's high watermark
	for _, v := range []int16{13, 16, 18} {
		full := roundTrip[*kmsg.FetchResponse](c, sessionReq(v, 0, 0, 100, fetchAt{id: ta.ID, p: 0}))
		id := full.SessionID
		if id <= 0 {
			t.Fatalf("v%d: no session", v)
		}
		got := check(full, id, a0)
		if len(records(t, got[a0].RecordBatches)) != 2 {
			t.Fatalf("v%d: full fetch %+v", v, got[a0])
		}
		// Add idb/0, ida/1 and an unknown id; move ida/0 to its end.
		got = check(roundTrip[*kmsg.FetchResponse](c, sessionReq(v, id, 1, 100, fetchAt{id: ta.ID, p: 0, off: 2}, fetchAt{id: ta.ID, p: 1}, fetchAt{id: tb.ID, p: 0, off: bOff}, fetchAt{id: unknown, p: 0})), id, a1, b0, u0)
		if got[u0].ErrorCode != kerr.UnknownTopicID.Code || got[a1].ErrorCode != 0 || got[b0].ErrorCode != 0 {
			t.Fatalf("v%d: %+v", v, got)
		}
		// Nothing changed but the unknown id, answered again.
		check(roundTrip[*kmsg.FetchResponse](c, sessionReq(v, id, 2, 100)), id, u0)
		// Forgotten by id.
		check(roundTrip[*kmsg.FetchResponse](c, forget(sessionReq(v, id, 3, 100), "", unknown, 0)), id)
		if s, p := n.srv.fetchSessions.stats(); s != 1 || p != 3 {
			t.Fatalf("v%d: %d sessions of %d partitions, want 1 of 3", v, s, p)
		}
		// New records on idb/0 come back under its id.
		pr := produceReq(13, -1, "", 0, batch(t, "b", 1, kbatch.BuildOptions{}))
		pr.Topics[0].TopicID = tb.ID
		if code := roundTrip[*kmsg.ProduceResponse](c, pr).Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatal(kerr.ErrorForCode(code))
		}
		inc := roundTrip[*kmsg.FetchResponse](c, sessionReq(v, id, 4, 5000))
		got = check(inc, id, b0)
		if recs := records(t, got[b0].RecordBatches); inc.Topics[0].TopicID != tb.ID || len(recs) != 1 || recs[0].Offset != bOff {
			t.Fatalf("v%d: idb/0 answered as %x with %d bytes", v, inc.Topics[0].TopicID, len(got[b0].RecordBatches))
		}
		// A by-id session cannot be used by name.
		if code := roundTrip[*kmsg.FetchResponse](c, sessionReq(12, id, 5, 100)).ErrorCode; code != kerr.FetchSessionTopicIDError.Code {
			t.Fatalf("v%d session at v12: %v", v, kerr.ErrorForCode(code))
		}
		// Close it for the next version.
		bOff++
		check(roundTrip[*kmsg.FetchResponse](c, sessionReq(v, id, -1, 100, fetchAt{id: tb.ID, p: 0, off: bOff})), 0, b0)
	}
}

// fakeClock is a time the test moves, for the fetch session cache.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) add(d time.Duration) { c.ns.Add(int64(d)) }

// setClock makes the cache tell time by now.
func (c *fetchSessionCache) setClock(now func() time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = now
}

// TestFetchSessionCacheBounds: the cache holds at most its slots; a full
// fetch finding it full is answered without a session, unless the least
// recently used session is stale (2 minutes unused) or an older, smaller
// one gives way (Kafka's eviction); a stale session is gone.
func TestFetchSessionCacheBounds(t *testing.T) {
	n := startNode(t, func(c *Config) { c.FetchSessionCacheSlots = 1 })
	clock := &fakeClock{}
	clock.ns.Store(time.Now().UnixNano())
	n.srv.fetchSessions.setClock(clock.now)
	n.createTopic("bounds", 3)
	c := n.dial()
	p0, p1, p2 := fetchAt{"bounds", tp0, 0, 0}, fetchAt{"bounds", tp0, 1, 0}, fetchAt{"bounds", tp0, 2, 0}
	open := func(parts ...fetchAt) int32 {
		t.Helper()
		resp := roundTrip[*kmsg.FetchResponse](c, sessionReq(12, 0, 0, 10, parts...))
		if resp.ErrorCode != 0 || len(answered(t, resp)) != len(parts) {
			t.Fatalf("full fetch: error %v, %d partitions", kerr.ErrorForCode(resp.ErrorCode), len(answered(t, resp)))
		}
		return resp.SessionID
	}
	use := func(id, epoch int32) int16 {
		t.Helper()
		return roundTrip[*kmsg.FetchResponse](c, sessionReq(12, id, epoch, 10)).ErrorCode
	}

	a := open(p0)
	if a == 0 {
		t.Fatal("no session in an empty cache")
	}
	if id := open(p0, p1, p2); id != 0 {
		t.Fatalf("full cache, nothing stale or old: session %d, want 0 (sessionless)", id)
	}
	clock.add(90 * time.Second)
	if code := use(a, 1); code != 0 {
		t.Fatalf("session used within 2 minutes: %v", kerr.ErrorForCode(code))
	}
	clock.add(3 * time.Minute)
	b := open(p0)
	if b == 0 {
		t.Fatal("a stale session did not give way")
	}
	if code := use(a, 2); code != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("stale session: %v, want FETCH_SESSION_ID_NOT_FOUND", kerr.ErrorForCode(code))
	}
	// b is used, but older than 2 minutes: a larger session takes its
	// place, one no larger does not.
	for epoch := int32(1); epoch <= 2; epoch++ {
		clock.add(90 * time.Second)
		if code := use(b, epoch); code != 0 {
			t.Fatal(kerr.ErrorForCode(code))
		}
	}
	if id := open(p1); id != 0 {
		t.Fatalf("a session no larger evicted an older one: session %d", id)
	}
	if id := open(p1, p2); id == 0 {
		t.Fatal("a larger session did not take an older, smaller one's place")
	}
	if code := use(b, 3); code != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("evicted session: %v", kerr.ErrorForCode(code))
	}
	if got := testutil.ToFloat64(n.srv.fetchSessions.evicted); got != 2 {
		t.Fatalf("%v sessions evicted, want 2", got)
	}
	if got := testutil.ToFloat64(n.srv.fetchSessions.created); got != 3 {
		t.Fatalf("%v sessions created, want 3", got)
	}
}

// TestFetchSessionCacheLimits: no slots, no sessions; the partitions all
// sessions hold are bounded: a full fetch over the bound gets no session,
// an incremental one that would pass it loses its session.
func TestFetchSessionCacheLimits(t *testing.T) {
	parts := func(n int) []*fetchPart {
		out := newFetchParts([]kmsg.FetchRequestTopic{{Topic: "t", Partitions: make([]kmsg.FetchRequestTopicPartition, n)}}, nil, false)
		for i, fp := range out {
			fp.partition = int32(i)
		}
		return out
	}
	if id := newFetchSessionCache(-1, nil).create(parts(1), false); id != 0 {
		t.Fatalf("a cache without slots made session %d", id)
	}
	c := newFetchSessionCache(0, nil)
	c.maxParts = 4
	if id := c.create(parts(5), false); id != 0 {
		t.Fatalf("a session over the partition bound: %d", id)
	}
	id := c.create(parts(3), false)
	sess, code := c.acquire(id, 1, false)
	if code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	more := []kmsg.FetchRequestTopic{{Topic: "u", Partitions: make([]kmsg.FetchRequestTopicPartition, 1)}}
	if !c.resize(sess, sess.update(more, nil, nil, c.maxParts)) {
		t.Fatal("4 partitions refused, the bound is 4")
	}
	more[0].Partitions[0].Partition = 1
	if sess.update(more, nil, nil, c.maxParts) || c.resize(sess, false) {
		t.Fatal("5 partitions kept, the bound is 4")
	}
	c.release(sess)
	if n, p := c.stats(); n != 0 || p != 0 {
		t.Fatalf("%d sessions of %d partitions left", n, p)
	}
	if _, code := c.acquire(id, 2, false); code != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("dropped session: %v", kerr.ErrorForCode(code))
	}
}

// TestFetchSessionAuthorizer: a session keeps the partitions the
// authorizer refused, and checks READ on every fetch for those the request
// does not name: a refused topic is answered on each fetch, a grant brings
// its records, a revoke refuses a partition the client no longer names.
func TestFetchSessionAuthorizer(t *testing.T) {
	n := startNode(t, func(c *Config) { c.Authorizer = Authorizer{Enabled: true} })
	n.createTopic("open", 1)
	n.createTopic("closed", 1)
	const (
		topic = kmsg.ACLResourceTypeTopic
		lit   = kmsg.ACLResourcePatternTypeLiteral
		allow = kmsg.ACLPermissionTypeAllow
	)
	readOpen := acl(topic, "open", lit, anonymous, "*", kmsg.ACLOperationRead, allow)
	grant := func(acls ...metadata.ACL) {
		t.Helper()
		_, before := n.meta.ACLs()
		if err := n.meta.CreateACLs(t.Context(), acls); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { _, got := n.meta.ACLs(); return len(got) == len(before)+len(acls) })
	}
	grant(readOpen,
		acl(topic, "open", lit, anonymous, "*", kmsg.ACLOperationWrite, allow),
		acl(topic, "closed", lit, anonymous, "*", kmsg.ACLOperationWrite, allow))
	c := n.dial()
	produceN(t, c, "open", 1)
	produceN(t, c, "closed", 1)
	denied := kerr.TopicAuthorizationFailed.Code
	check := func(resp *kmsg.FetchResponse, want map[string]int16) map[string]kmsg.FetchResponseTopicPartition {
		t.Helper()
		got := answered(t, resp)
		if resp.ErrorCode != 0 || len(got) != len(want) {
			t.Fatalf("error %v, partitions %v, want %v", kerr.ErrorForCode(resp.ErrorCode), keys(got), want)
		}
		for k, code := range want {
			if p, ok := got[k]; !ok || p.ErrorCode != code {
				t.Fatalf("%s: %+v, want error %v", k, p, kerr.ErrorForCode(code))
			}
		}
		return got
	}

	full := roundTrip[*kmsg.FetchResponse](c, sessionReq(12, 0, 0, 100, fetchAt{"open", tp0, 0, 0}, fetchAt{"closed", tp0, 0, 0}))
	id := full.SessionID
	got := check(full, map[string]int16{"open/0": 0, "closed/0": denied})
	if id == 0 || len(records(t, got["open/0"].RecordBatches)) != 2 {
		t.Fatalf("session %d, open/0 %+v", id, got["open/0"])
	}
	if s, p := n.srv.fetchSessions.stats(); s != 1 || p != 2 {
		t.Fatalf("%d sessions of %d partitions, want 1 of 2 (the refused one kept)", s, p)
	}
	// Not named, still refused: answered again.
	got = check(roundTrip[*kmsg.FetchResponse](c, sessionReq(12, id, 1, 100, fetchAt{"open", tp0, 0, 2})), map[string]int16{"closed/0": denied})
	if p := got["closed/0"]; p.HighWatermark != -1 || len(p.RecordBatches) != 0 {
		t.Fatalf("refused partition: %+v", p)
	}
	// Granted: its records come back.
	grant(acl(topic, "closed", lit, anonymous, "*", kmsg.ACLOperationRead, allow))
	got = check(roundTrip[*kmsg.FetchResponse](c, sessionReq(12, id, 2, 100)), map[string]int16{"closed/0": 0})
	if len(records(t, got["closed/0"].RecordBatches)) != 2 {
		t.Fatalf("granted partition: %+v", got["closed/0"])
	}
	// Revoked on open, which the fetch does not name: refused.
	_, before := n.meta.ACLs()
	if err := n.meta.DeleteACLs(t.Context(), []string{readOpen.ID()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, got := n.meta.ACLs(); return len(got) == len(before)-1 })
	check(roundTrip[*kmsg.FetchResponse](c, sessionReq(12, id, 3, 100, fetchAt{"closed", tp0, 0, 2})), map[string]int16{"open/0": denied})
}

// TestFetchSessionsFranzGo: a franz-go consumer (fetch sessions on by
// default) reads 64 partitions while a producer writes them: every record
// once, in order, and the node served it from a session that incremental
// fetches kept going.
func TestFetchSessionsFranzGo(t *testing.T) {
	n := startNode(t, nil)
	const parts, rounds = 64, 30
	n.createTopic("many", parts)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	consumer, err := kgo.NewClient(kgo.SeedBrokers(n.addr), kgo.ConsumeTopics("many"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	producer, err := kgo.NewClient(kgo.SeedBrokers(n.addr), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	produced := make(chan error, 1)
	go func() {
		defer close(produced)
		for i := range rounds {
			for p := range int32(parts) {
				producer.Produce(ctx, &kgo.Record{Topic: "many", Partition: p, Value: fmt.Appendf(nil, "%d-%d", p, i)}, func(_ *kgo.Record, err error) {
					if err != nil {
						select {
						case produced <- err:
						default:
						}
					}
				})
			}
			if i%5 == 4 { // in waves, so the consumer catches up in between
				if err := producer.Flush(ctx); err != nil {
					produced <- err
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		if err := producer.Flush(ctx); err != nil {
			produced <- err
		}
	}()

	next := make([]int, parts)
	total := 0
	for total < parts*rounds {
		fs := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", total, parts*rounds, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			p := r.Partition
			if want := fmt.Sprintf("%d-%d", p, next[p]); string(r.Value) != want || r.Offset != int64(next[p]) {
				t.Fatalf("partition %d: record %q at offset %d, want %q at %d", p, r.Value, r.Offset, want, next[p])
			}
			next[p]++
			total++
		})
	}
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	// Nothing more: every record was read once.
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	defer cancelShort()
	if fs := consumer.PollFetches(short); fs.NumRecords() != 0 {
		t.Fatalf("%d more records after all were read", fs.NumRecords())
	}

	if got := testutil.ToFloat64(n.srv.fetchSessions.created); got < 1 {
		t.Fatal("the consumer fetched without a session")
	}
	if got := gauge(t, n, "strata_fetch_sessions"); got < 1 {
		t.Fatalf("strata_fetch_sessions = %v, want the consumer's session", got)
	}
	if got := gauge(t, n, "strata_fetch_session_partitions"); got != parts {
		t.Fatalf("strata_fetch_session_partitions = %v, want %d", got, parts)
	}
	// The session went on incrementally: its epoch is well past 1.
	c := n.srv.fetchSessions
	c.mu.Lock()
	epoch := int32(0)
	for _, sess := range c.sessions {
		epoch = max(epoch, sess.epoch)
	}
	c.mu.Unlock()
	if epoch < 5 {
		t.Fatalf("session epoch %d: incremental fetches did not keep the session", epoch)
	}
}

// gauge reads a gauge of n's registry.
func gauge(t *testing.T, n *testNode, name string) float64 {
	t.Helper()
	mfs, err := n.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

// TestFetchSessionConcurrentUse: connections racing on one session (as no
// client should) and opening and closing others get only session answers
// Kafka gives (the session's epoch moves once per accepted fetch), and the
// cache stays consistent.
func TestFetchSessionConcurrentUse(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic("race", 4)
	c := n.dial()
	all := []fetchAt{{"race", tp0, 0, 0}, {"race", tp0, 1, 0}, {"race", tp0, 2, 0}, {"race", tp0, 3, 0}}
	id := roundTrip[*kmsg.FetchResponse](c, sessionReq(12, 0, 0, 10, all...)).SessionID
	if id == 0 {
		t.Fatal("no session")
	}
	var (
		next     atomic.Int32 // the epochs tried
		accepted atomic.Int32
		wg       sync.WaitGroup
	)
	for w := range 4 {
		conn := n.dial()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				if w == 0 && i%4 == 0 { // another client's sessions come and go
					other := roundTrip[*kmsg.FetchResponse](conn, sessionReq(12, 0, 0, 0, all[:1]...)).SessionID
					roundTrip[*kmsg.FetchResponse](conn, sessionReq(12, other, -1, 0, all[:1]...))
					continue
				}
				resp := roundTrip[*kmsg.FetchResponse](conn, sessionReq(12, id, next.Add(1)%8+1, 0))
				switch resp.ErrorCode {
				case 0:
					accepted.Add(1)
				case kerr.InvalidFetchSessionEpoch.Code:
				default:
					t.Errorf("racing fetch: %v", kerr.ErrorForCode(resp.ErrorCode))
				}
			}
		}()
	}
	wg.Wait()
	if accepted.Load() == 0 {
		t.Fatal("no racing fetch was accepted")
	}
	if s, p := n.srv.fetchSessions.stats(); s != 1 || p != 4 {
		t.Fatalf("%d sessions of %d partitions, want the one of 4", s, p)
	}
	// The session's epoch moved once per accepted fetch.
	want := nextFetchEpoch(int32(accepted.Load()))
	c2 := n.srv.fetchSessions
	c2.mu.Lock()
	got := c2.sessions[id].epoch
	c2.mu.Unlock()
	if got != want {
		t.Fatalf("session epoch %d after %d accepted fetches, want %d", got, accepted.Load(), want)
	}
}
