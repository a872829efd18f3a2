package ingest

// Fetch: v4-v18 served
// * Fetch sessions (KIP-227, v7+; the cache is fetchsession.go): a full
//   fetch with SessionEpoch 0 opens a session of its partitions and is
//   answered with its new SessionID, or with SessionID 0 when the cache has
//   no room (clients then keep sending full fetches). SessionEpoch -1 is a
//   sessionless full fetch; with a SessionID it closes that session first,
//   as epoch 0 does. An incremental fetch (SessionID, and the session's
//   next epoch) adds or updates the partitions it names (by topic name
//   below v13, by topic id from v13: a session stays with the naming it was
//   opened with, else FETCH_SESSION_TOPIC_ID_ERROR), removes its
//   ForgottenTopics, then reads every partition of the session, and answers
//   only those with records, an error, or a high watermark, last stable
//   offset or log start offset other than the client was last told; the
//   partitions that returned records move to the end of the session's order
//   so the others come first next time (as Kafka). An unknown SessionID is
//   FETCH_SESSION_ID_NOT_FOUND, a wrong epoch INVALID_FETCH_SESSION_EPOCH,
//   both with no partitions and SessionID 0. A session left with no
//   partitions is closed and its fetch answered with SessionID 0.
// * The authorizer takes the topics a caller may not read out of the
//   request and answers them (authorize.go); a session keeps them, as
//   Kafka's does, and every fetch checks READ again for the session's
//   partitions the request does not name: TOPIC_AUTHORIZATION_FAILED.
// * KIP-951 (v16+): a partition answered NOT_LEADER_OR_FOLLOWER carries
//   its current leader (CurrentLeader) when etcd names it, one answered
//   FENCED_LEADER_EPOCH this node's leadership, and the response lists
//   those leaders' addresses on the request's listener (NodeEndpoints;
//   leaderhint.go).
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
//   partition's high watermark advances, then read again (a fetch of no
//   partitions is answered at once, as Kafka does). The wait runs on
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

// fetchPart is one partition of a fetch: named by the request, or held by
// a fetch session across requests.
type fetchPart struct {
	// name and id are the topic as the client names it: by name below
	// v13, by id from v13 (the other is empty).
	name      string
	id        metadata.TopicID
	partition int32
	// What the client asks: FetchOffset, CurrentLeaderEpoch and
	// PartitionMaxBytes.
	offset      int64
	leaderEpoch int32
	maxBytes    int32

	// Resolved for each request: the topic, or err when it could not be.
	topic metadata.Topic
	err   int16
	// skip: the authorizer took the partition out of this request and
	// answers it (authorize.go).
	skip bool
	// named is the session fetch (fetchSession.seq) that last named the
	// partition.
	named uint64

	// Of the last read (fetchOnce): whether the partition is in the
	// response, returned records, and what it answered.
	out, data         bool
	code              int16
	hw, lso, logStart int64

	// sentHW, sentLSO and sentLogStart are what the session's client was
	// last told; -1 puts the partition in the next incremental response.
	sentHW, sentLSO, sentLogStart int64
}

// set takes what the client asks of the partition.
func (fp *fetchPart) set(rp *kmsg.FetchRequestTopicPartition) {
	fp.offset, fp.leaderEpoch, fp.maxBytes = rp.FetchOffset, rp.CurrentLeaderEpoch, rp.PartitionMaxBytes
}

// key is the partition's key in a session (by id when ids).
func (fp *fetchPart) key(ids bool) fetchKey {
	if ids {
		return fetchKey{id: fp.id, p: fp.partition}
	}
	return fetchKey{name: fp.name, p: fp.partition}
}

// sameTopic reports whether fp and o name the same topic.
func (fp *fetchPart) sameTopic(o *fetchPart) bool { return fp.name == o.name && fp.id == o.id }

// mustRespond reports whether an incremental response includes the
// partition as last read (Kafka's CachedPartition.maybeUpdateResponseData,
// and the last stable offset).
func (fp *fetchPart) mustRespond() bool {
	return fp.data || fp.code != 0 || fp.hw != fp.sentHW || fp.lso != fp.sentLSO || fp.logStart != fp.sentLogStart
}

// sent records what the client is told of the partition by the response
// going out: errors and partitions the authorizer answered are sent again
// (-1) once they change.
func (fp *fetchPart) sent() {
	if fp.skip || fp.code != 0 {
		fp.sentHW, fp.sentLSO, fp.sentLogStart = -1, -1, -1
		return
	}
	fp.sentHW, fp.sentLSO, fp.sentLogStart = fp.hw, fp.lso, fp.logStart
}

// newFetchParts makes the parts of the partitions topics name, in order;
// denied, when not nil, marks the topics the authorizer took out.
func newFetchParts(topics []kmsg.FetchRequestTopic, denied []bool, ids bool) []*fetchPart {
	n := 0
	for i := range topics {
		n += len(topics[i].Partitions)
	}
	block := make([]fetchPart, n)
	parts := make([]*fetchPart, n)
	n = 0
	for i := range topics {
		rt := &topics[i]
		for j := range rt.Partitions {
			fp := &block[n]
			if ids {
				fp.id = rt.TopicID
			} else {
				fp.name = rt.Topic
			}
			fp.partition = rt.Partitions[j].Partition
			fp.set(&rt.Partitions[j])
			fp.skip = denied != nil && denied[i]
			parts[n] = fp
			n++
		}
	}
	return parts
}

// fetchTopics returns the topics of a fetch as the client sent them and,
// when the authorizer took some out, which (their partitions join a
// session with the others). Without the authorizer, or for a fetch that
// opens no session, they are the request's.
func fetchTopics(r *request, req *kmsg.FetchRequest, sessions bool) ([]kmsg.FetchRequestTopic, []bool) {
	if !sessions || r.fetchTopics == nil || len(r.fetchTopics) == len(req.Topics) {
		return req.Topics, nil
	}
	// The authorizer keeps the allowed topics in order, deciding by
	// topic: walk both.
	denied := make([]bool, len(r.fetchTopics))
	j := 0
	for i := range r.fetchTopics {
		sent := &r.fetchTopics[i]
		if j < len(req.Topics) && req.Topics[j].Topic == sent.Topic && req.Topics[j].TopicID == sent.TopicID {
			j++
			continue
		}
		denied[i] = true
	}
	return r.fetchTopics, denied
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

func (s *Server) fetch(connCtx context.Context, r *request, req *kmsg.FetchRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	byID := req.Version >= 13

	// The session first: a fetch refused for it reads nothing.
	var (
		sess   *fetchSession
		create bool // a full fetch that opens a session
	)
	if req.Version >= 7 {
		switch req.SessionEpoch {
		case -1, 0:
			if req.SessionID != 0 {
				s.fetchSessions.remove(req.SessionID)
			}
			create = req.SessionEpoch == 0
		default:
			var code int16
			if sess, code = s.fetchSessions.acquire(req.SessionID, req.SessionEpoch, byID); code != 0 {
				resp.ErrorCode = code
				return resp
			}
			defer s.fetchSessions.release(sess)
		}
	}
	var parts []*fetchPart
	topics, denied := fetchTopics(r, req, sess != nil || create)
	if sess != nil {
		ok := sess.update(topics, denied, req.ForgottenTopics, s.fetchSessions.maxParts)
		if !s.fetchSessions.resize(sess, ok) {
			resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
			return resp
		}
		// A session left empty is closed: the fetch is sessionless.
		if len(sess.parts) > 0 {
			resp.SessionID = sess.id
		}
		parts = sess.parts
	} else {
		parts = newFetchParts(topics, denied, byID)
	}

	// A fetch answers within its MaxWait plus a little, whatever the object
	// store does: a cold read stuck on the store (an outage, a half-open
	// connection) fails that partition with KAFKA_STORAGE_ERROR, which
	// clients retry, instead of holding the response past the client's
	// read timeout (which would cost every partition of the request).
	ctx, cancel := context.WithTimeout(connCtx, time.Duration(max(req.MaxWaitMillis, 0))*time.Millisecond+fetchReadSlack)
	defer cancel()

	// Take this fetch's fair share of the node's in-flight fetch bytes
	// before reading anything, and answer with at most that much; the
	// writer gives it back once the response is written (endFetch).
	want := min(int64(max(req.MaxBytes, 0)), maxFetchResponseBytes)
	got := s.fetchBudget.grant(want)
	req.MaxBytes = int32(got)
	r.budgeted, r.reserved = true, got

	var seq uint64
	if sess != nil {
		seq = sess.seq
	}
	s.resolveFetchParts(r, byID, parts, seq)

	deadline := r.arrived.Add(time.Duration(max(req.MaxWaitMillis, 0)) * time.Millisecond)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	var changed []<-chan struct{}
	if sess != nil {
		changed = sess.waits[:0]
		defer func() { clear(changed); sess.waits = changed[:0] }()
	}
	incremental := sess != nil
	failed := false
	for {
		// Changed channels are taken before reading, so an advance
		// between the read and the wait is not missed.
		changed = changed[:0]
		var nbytes int
		nbytes, failed = s.fetchOnce(ctx, req, parts, incremental, resp, &changed)
		if int64(nbytes) >= int64(req.MinBytes) || failed || len(parts) == 0 || ctx.Err() != nil || !time.Now().Before(deadline) {
			s.m.fetchBytes.Add(float64(nbytes))
			break
		}
		if timer == nil {
			timer = time.NewTimer(time.Until(deadline))
		}
		if !waitAny(ctx, changed, timer.C, s.draining) {
			// Deadline, shutdown or client gone: answer what we have.
			s.m.fetchBytes.Add(float64(nbytes))
			break
		}
	}
	s.traffic.fetched(resp)
	if failed && req.Version >= 16 {
		s.fetchLeaderEndpoints(r, resp)
	}

	// What the client is told now is what later incremental fetches
	// compare with.
	switch {
	case sess != nil:
		sess.sent()
	case create && connCtx.Err() == nil:
		for _, fp := range parts {
			fp.sent()
		}
		resp.SessionID = s.fetchSessions.create(parts, byID)
	}
	return resp
}

// resolveFetchParts resolves each part's topic for this fetch (by id when
// byID) and checks the partition exists and, for the partitions of a
// session the fetch does not name (named != seq), that the caller may read
// it. The last few topics resolved are kept, so a session whose topics
// interleave still looks each up about once.
func (s *Server) resolveFetchParts(r *request, byID bool, parts []*fetchPart, seq uint64) {
	type resolved struct {
		name    string
		id      metadata.TopicID
		t       metadata.Topic
		err     int16
		allowed bool
	}
	var (
		recent [8]resolved
		n      int
	)
	authz := s.authz.cfg.Enabled
	for _, fp := range parts {
		var rt *resolved
		for i := range min(n, len(recent)) {
			if recent[i].name == fp.name && recent[i].id == fp.id {
				rt = &recent[i]
				break
			}
		}
		if rt == nil {
			rt = &recent[n%len(recent)]
			n++
			*rt = resolved{name: fp.name, id: fp.id}
			var ok bool
			if byID {
				if rt.t, ok = s.clientTopicByID(fp.id); !ok {
					rt.err = kerr.UnknownTopicID.Code
				}
			} else if rt.t, ok = s.clientTopic(fp.name); !ok {
				rt.err = kerr.UnknownTopicOrPartition.Code
			}
			rt.allowed = !authz || rt.err != 0 || s.canTopic(r, kmsg.ACLOperationRead, rt.t.Name)
		}
		if fp.named != seq {
			fp.skip = false // only a request's own denied topics are skipped
		}
		fp.topic, fp.err = rt.t, rt.err
		switch {
		case fp.skip || fp.err != 0:
		case !rt.allowed:
			fp.err = kerr.TopicAuthorizationFailed.Code
		case fp.partition < 0 || fp.partition >= rt.t.Partitions:
			fp.err = kerr.UnknownTopicOrPartition.Code
		}
	}
}

// fetchOnce builds resp's topics from one read of every partition; an
// incremental fetch answers only the partitions that must be (mustRespond).
// It returns the record bytes read and whether any partition failed (which,
// as in Kafka, answers the fetch at once).
func (s *Server) fetchOnce(ctx context.Context, req *kmsg.FetchRequest, parts []*fetchPart, incremental bool, resp *kmsg.FetchResponse, changed *[]<-chan struct{}) (nbytes int, failed bool) {
	resp.Topics = resp.Topics[:0]
	var last *fetchPart // of the response's last topic
	for _, fp := range parts {
		fp.out, fp.data = false, false
		if fp.skip {
			continue
		}
		sp := kmsg.NewFetchResponseTopicPartition()
		sp.Partition = fp.partition
		// An empty, not null, record set: librdkafka reads a null one as a
		// bad MessageSet size.
		sp.RecordBatches = []byte{}
		sp.ErrorCode = fp.err
		if sp.ErrorCode == 0 {
			n := s.fetchPartition(ctx, req, fp, &sp, nbytes, changed)
			nbytes += n
		} else if sp.ErrorCode == kerr.TopicAuthorizationFailed.Code {
			sp.HighWatermark = -1 // as the authorizer answers
		}
		if sp.ErrorCode != 0 {
			failed = true
		}
		fp.code, fp.data = sp.ErrorCode, len(sp.RecordBatches) > 0
		fp.hw, fp.lso, fp.logStart = sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset
		if incremental && !fp.mustRespond() {
			continue
		}
		fp.out = true
		if last == nil || !fp.sameTopic(last) {
			last = fp
			st := kmsg.NewFetchResponseTopic()
			st.Topic, st.TopicID = fp.name, fp.id
			if fp.topic.Name != "" {
				st.Topic = fp.topic.Name
			}
			resp.Topics = append(resp.Topics, st)
		}
		st := &resp.Topics[len(resp.Topics)-1]
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
	tp := metadata.TP{Topic: fp.topic.Name, Partition: fp.partition}
	p, err := s.tier.Partition(ctx, tp)
	if err != nil {
		s.fetchError(req, sp, tp, err)
		return 0
	}
	if code := checkLeaderEpoch(fp.leaderEpoch, p.LeaderEpoch()); code != 0 {
		sp.ErrorCode = code
		if code == kerr.FencedLeaderEpoch.Code && req.Version >= 16 {
			// KIP-951: the client's leader is older than ours.
			sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = s.cfg.NodeID, p.LeaderEpoch()
		}
		return 0
	}
	*changed = append(*changed, p.Changed())
	sp.HighWatermark = p.HighWatermark()
	sp.LastStableOffset = p.LastStableOffset()
	sp.LogStartOffset = p.LogStartOffset()

	// The client's MaxBytes, but never above the broker's own ceiling:
	// a response is held in memory while it is built and written.
	room := min(int(fp.maxBytes), min(int(req.MaxBytes), maxFetchResponseBytes)-inResp)
	minOne := inResp == 0
	if room <= 0 && !minOne {
		return 0 // the response is full; the client fetches this next time
	}
	committed := req.IsolationLevel == 1
	res, err := p.ReadIsolated(ctx, fp.offset, max(room, 0), minOne, committed)
	if err != nil {
		s.fetchError(req, sp, tp, err)
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

// fetchError answers a partition the tier could not read: a partition this
// node does not lead names its leader (KIP-951, v16+).
func (s *Server) fetchError(req *kmsg.FetchRequest, sp *kmsg.FetchResponseTopicPartition, tp metadata.TP, err error) {
	sp.ErrorCode = errCode(err)
	if sp.ErrorCode == kerr.NotLeaderForPartition.Code && req.Version >= 16 {
		if id, epoch, ok := s.leaderHint(tp); ok {
			sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = id, epoch
		}
	}
}

// fetchLeaderEndpoints lists the addresses of the leaders resp's
// partitions name (KIP-951).
func (s *Server) fetchLeaderEndpoints(r *request, resp *kmsg.FetchResponse) {
	var ids []int32
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			if id := resp.Topics[i].Partitions[j].CurrentLeader.LeaderID; id >= 0 {
				ids = append(ids, id)
			}
		}
	}
	for _, ne := range s.leaderEndpoints(r.listener, ids) {
		b := kmsg.NewFetchResponseBroker()
		b.NodeID, b.Host, b.Port, b.Rack = ne.id, ne.host, ne.port, ne.rack
		resp.Brokers = append(resp.Brokers, b)
	}
}

// fetchInternal answers a partition of an internal topic: empty, with
// nothing to wait on (the long poll ends at MaxWait).
func fetchInternal(req *kmsg.FetchRequest, fp *fetchPart, sp *kmsg.FetchResponseTopicPartition) {
	if code := checkLeaderEpoch(fp.leaderEpoch, internalLeaderEpoch); code != 0 {
		sp.ErrorCode = code
		return
	}
	sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = 0, 0, 0
	if fp.offset != 0 {
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
