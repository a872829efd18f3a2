package ingest

// Fetch: v4-v18 served
// * Sessionless (KIP-227 with no session cache, as a Kafka broker whose
//   max.incremental.fetch.session.cache.slots is 0): every request is a full
//   fetch and is answered with SessionID 0, which tells clients (franz-go,
//   librdkafka, sarama, kafkajs) to keep sending full fetches. An incremental
//   request (SessionEpoch > 0, or any epoch other than 0 and -1) names a
//   session we cannot have: FETCH_SESSION_ID_NOT_FOUND at the top level and
//   no partitions, exactly as Kafka answers then. ForgottenTopics is ignored
//   (nothing is remembered).
// * v13+ names topics by id: an unknown id is UNKNOWN_TOPIC_ID.
// * Per partition: the tier reads whole batches from FetchOffset, at most
//   PartitionMaxBytes and what is left of the response's MaxBytes, except
//   that the first batch of the response is returned whole even when larger
//   (Kafka's minOneMessage: a consumer must never be stuck). Only durable
//   data is returned (below the high watermark).
// * IsolationLevel 1 (read_committed, v4+) reads up to the last stable
//   offset and answers the aborted transactions of the range read
//   (AbortedTransactions, from the tier's aborted index, never a scan);
//   read_uncommitted reads up to the high watermark. Control batches
//   (markers) are returned as stored: clients skip them.
// * HighWatermark, LastStableOffset and LogStartOffset come from the tier; an offset outside [log start, HW] is
//   OFFSET_OUT_OF_RANGE. CurrentLeaderEpoch (v9+): above ours
//   UNKNOWN_LEADER_EPOCH, below FENCED_LEADER_EPOCH. LastFetchedEpoch (v12+)
//   needs no divergence check: a leader change never truncates durable data.
// * Long poll: while the response holds fewer than MinBytes and no partition
//   failed, wait until MaxWaitMillis from arrival passes or any fetched
//   partition's high watermark advances, then read again. The wait runs on
//   the connection's writer, so it holds no other connection up; Close cuts
//   it short.
// * The response's MaxBytes is capped at 55 MiB (Kafka's broker
//   fetch.max.bytes default), so memory per fetch is bounded whatever the
//   client asks; a batch larger than that still goes out alone (minOne).
// * Rack, ReplicaID/ReplicaState and the v18 broker tags are accepted and
//   ignored: every fetcher is a consumer.
// * The internal topic __consumer_offsets (internal_topics.go) is an empty
//   partition, not an error: log start, high watermark and last stable
//   offset 0, no records, leader epoch 0. Offset 0 waits like any caught-up
//   fetch; any other offset is OFFSET_OUT_OF_RANGE, as for an empty
//   partition. Group offsets live in etcd, not in this topic.

import (
	"context"
	"errors"
	"reflect"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
)

// maxFetchResponseBytes is the most record data one Fetch response carries
// (Kafka's fetch.max.bytes default, 55 MiB).
const maxFetchResponseBytes = 55 << 20

// fetchPart is one requested partition.
type fetchPart struct {
	rt *kmsg.FetchRequestTopic
	rp *kmsg.FetchRequestTopicPartition
	// topic is the resolved topic; err is set when it could not be.
	topic metadata.Topic
	err   int16
}

// fetchReadSlack is how long past its MaxWait a fetch may spend reading.
const fetchReadSlack = 5 * time.Second

// handleFetch returns the function that answers req on the writer: reading
// is done there, after the responses before it, so a fetch that waits holds
// no data it read too early.
func (s *Server) handleFetch(r *request, req *kmsg.FetchRequest) func(context.Context) kmsg.Response {
	return func(ctx context.Context) kmsg.Response {
		return s.fetch(ctx, r, req)
	}
}

func (s *Server) fetch(ctx context.Context, r *request, req *kmsg.FetchRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	// A fetch answers within its MaxWait plus a little, whatever the object
	// store does: a cold read stuck on the store (an outage, a half-open
	// connection) fails that partition with KAFKA_STORAGE_ERROR, which
	// clients retry, instead of holding the response past the client's
	// read timeout (which would cost every partition of the request).
	ctx, cancel := context.WithTimeout(ctx, time.Duration(max(req.MaxWaitMillis, 0))*time.Millisecond+fetchReadSlack)
	defer cancel()
	if req.Version >= 7 && req.SessionEpoch != 0 && req.SessionEpoch != -1 {
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		return resp
	}

	// Take this fetch's fair share of the node's in-flight fetch bytes
	// before reading anything, and answer with at most that much; the
	// writer gives it back once the response is written (endFetch).
	want := min(int64(max(req.MaxBytes, 0)), maxFetchResponseBytes)
	got := s.fetchBudget.grant(want)
	req.MaxBytes = int32(got)
	r.budgeted, r.reserved = true, got

	var parts []fetchPart
	for i := range req.Topics {
		rt := &req.Topics[i]
		var (
			t   metadata.Topic
			ok  bool
			err int16
		)
		if req.Version >= 13 {
			if t, ok = s.clientTopicByID(rt.TopicID); !ok {
				err = kerr.UnknownTopicID.Code
			}
		} else if t, ok = s.clientTopic(rt.Topic); !ok {
			err = kerr.UnknownTopicOrPartition.Code
		}
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			fp := fetchPart{rt: rt, rp: rp, topic: t, err: err}
			if err == 0 && (rp.Partition < 0 || rp.Partition >= t.Partitions) {
				fp.err = kerr.UnknownTopicOrPartition.Code
			}
			parts = append(parts, fp)
		}
	}

	deadline := r.arrived.Add(time.Duration(max(req.MaxWaitMillis, 0)) * time.Millisecond)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		// Changed channels are taken before reading, so an advance
		// between the read and the wait is not missed.
		changed := make([]<-chan struct{}, 0, len(parts))
		nbytes, failed := s.fetchOnce(ctx, req, parts, resp, &changed)
		if int64(nbytes) >= int64(req.MinBytes) || failed || ctx.Err() != nil || !time.Now().Before(deadline) {
			s.m.fetchBytes.Add(float64(nbytes))
			s.traffic.fetched(resp)
			return resp
		}
		if timer == nil {
			timer = time.NewTimer(time.Until(deadline))
		}
		if !waitAny(ctx, changed, timer.C, s.draining) {
			// Deadline, shutdown or client gone: answer what we have.
			s.m.fetchBytes.Add(float64(nbytes))
			s.traffic.fetched(resp)
			return resp
		}
	}
}

// fetchOnce builds resp's topics from one read of every partition. It
// returns the record bytes read and whether any partition failed (which, as
// in Kafka, answers the fetch at once).
func (s *Server) fetchOnce(ctx context.Context, req *kmsg.FetchRequest, parts []fetchPart, resp *kmsg.FetchResponse, changed *[]<-chan struct{}) (nbytes int, failed bool) {
	resp.Topics = resp.Topics[:0]
	var last *kmsg.FetchRequestTopic
	for i := range parts {
		fp := &parts[i]
		if fp.rt != last {
			last = fp.rt
			st := kmsg.NewFetchResponseTopic()
			st.Topic = fp.rt.Topic
			st.TopicID = fp.rt.TopicID
			if fp.topic.Name != "" {
				st.Topic = fp.topic.Name
			}
			resp.Topics = append(resp.Topics, st)
		}
		st := &resp.Topics[len(resp.Topics)-1]
		sp := kmsg.NewFetchResponseTopicPartition()
		sp.Partition = fp.rp.Partition
		// An empty, not null, record set: librdkafka reads a null one as a
		// bad MessageSet size.
		sp.RecordBatches = []byte{}
		sp.ErrorCode = fp.err
		if sp.ErrorCode == 0 {
			n := s.fetchPartition(ctx, req, fp, &sp, nbytes, changed)
			nbytes += n
		}
		if sp.ErrorCode != 0 {
			failed = true
		}
		st.Partitions = append(st.Partitions, sp)
	}
	return nbytes, failed
}

// fetchPartition reads one partition into sp, given the bytes already in the
// response, and returns the bytes it added.
func (s *Server) fetchPartition(ctx context.Context, req *kmsg.FetchRequest, fp *fetchPart, sp *kmsg.FetchResponseTopicPartition, inResp int, changed *[]<-chan struct{}) int {
	if isInternalTopic(fp.topic.Name) {
		fetchInternal(req, fp, sp)
		return 0
	}
	p, err := s.tier.Partition(ctx, metadata.TP{Topic: fp.topic.Name, Partition: fp.rp.Partition})
	if err != nil {
		sp.ErrorCode = errCode(err)
		return 0
	}
	if code := checkLeaderEpoch(fp.rp.CurrentLeaderEpoch, p.LeaderEpoch()); code != 0 {
		sp.ErrorCode = code
		return 0
	}
	*changed = append(*changed, p.Changed())
	sp.HighWatermark = p.HighWatermark()
	sp.LastStableOffset = p.LastStableOffset()
	sp.LogStartOffset = p.LogStartOffset()

	// The client's MaxBytes, but never above the broker's own ceiling:
	// a response is held in memory while it is built and written.
	room := min(int(fp.rp.PartitionMaxBytes), min(int(req.MaxBytes), maxFetchResponseBytes)-inResp)
	minOne := inResp == 0
	if room <= 0 && !minOne {
		return 0 // the response is full; the client fetches this next time
	}
	committed := req.IsolationLevel == 1
	res, err := p.ReadIsolated(ctx, fp.rp.FetchOffset, max(room, 0), minOne, committed)
	if err != nil {
		sp.ErrorCode = errCode(err)
		if errors.Is(err, context.DeadlineExceeded) {
			// The fetch's own read time ran out on a slow store: a
			// storage error, which consumers retry with a backoff.
			sp.ErrorCode = kerr.KafkaStorageError.Code
		}
		return 0
	}
	sp.HighWatermark = res.HighWatermark
	sp.LastStableOffset = res.LastStableOffset
	sp.LogStartOffset = res.LogStartOffset
	if committed {
		// An empty list, not null, tells read_committed clients there is
		// nothing to skip.
		sp.AbortedTransactions = make([]kmsg.FetchResponseTopicPartitionAbortedTransaction, 0, len(res.Aborted))
		for _, a := range res.Aborted {
			at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
			at.ProducerID, at.FirstOffset = a.ProducerID, a.First
			sp.AbortedTransactions = append(sp.AbortedTransactions, at)
		}
	}
	if len(res.Batches) > 0 {
		sp.RecordBatches = res.Batches
	}
	return len(res.Batches)
}

// fetchInternal answers a partition of an internal topic: empty, with
// nothing to wait on (the long poll ends at MaxWait).
func fetchInternal(req *kmsg.FetchRequest, fp *fetchPart, sp *kmsg.FetchResponseTopicPartition) {
	if code := checkLeaderEpoch(fp.rp.CurrentLeaderEpoch, internalLeaderEpoch); code != 0 {
		sp.ErrorCode = code
		return
	}
	sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = 0, 0, 0
	if fp.rp.FetchOffset != 0 {
		sp.ErrorCode = kerr.OffsetOutOfRange.Code
		return
	}
	if req.IsolationLevel == 1 {
		sp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
	}
}

// waitAny waits until one of chans closes (true), or the timer fires, the
// server drains or ctx ends (false).
func waitAny(ctx context.Context, chans []<-chan struct{}, timer <-chan time.Time, draining <-chan struct{}) bool {
	if len(chans) == 1 { // the common case, without reflection
		select {
		case <-chans[0]:
			return true
		case <-timer:
		case <-draining:
		case <-ctx.Done():
		}
		return false
	}
	cases := make([]reflect.SelectCase, 0, len(chans)+3)
	cases = append(cases,
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer)},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(draining)},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
	)
	for _, c := range chans {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c)})
	}
	chosen, _, _ := reflect.Select(cases)
	return chosen >= 3
}
