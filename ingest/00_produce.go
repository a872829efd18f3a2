package ingest

// Produce: v3-v13 served (v0-v2 advertised for librdkafka's feature checks and,
// as in Kafka 4.0 (KAFKA-18659), refused when sent: the connection is closed,
// which is what Kafka's SocketServer does with an unsupported version)
// * acks must be -1, 0 or 1, else INVALID_REQUIRED_ACKS for every partition.
// * Each partition is validated (kbatch.Validate: CORRUPT_MESSAGE,
//   INVALID_RECORD, UNSUPPORTED_FOR_MESSAGE_FORMAT,
//   UNSUPPORTED_COMPRESSION_TYPE) and appended to the tier in request order,
//   on the connection's reader, so pipelined requests keep their order per
//   partition. A bad partition fails alone; the others are appended.
// * On a compacted topic (cleanup.policy has compact) a record without a key
//   is INVALID_RECORD, as in Kafka.
// * Exactly one batch per partition (v3+), else INVALID_RECORD; a batch above
//   the topic's max.message.bytes (default 1048588, Kafka's) is
//   MESSAGE_TOO_LARGE.
// * acks=1 is answered once every batch is in the hot tier; acks=-1 (all)
//   once the tier reports every batch durable (object store + etcd), bounded
//   by TimeoutMillis from arrival: REQUEST_TIMED_OUT past it. The wait runs
//   on the connection's writer, so a pipelined producer's in-flight requests
//   all wait on the same flush, not one flush each.
// * acks=0 is never answered, not even on error (errors are logged). The work
//   is the same as for acks=1.
// * Unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION (Produce never
//   creates topics; clients send Metadata first, which may). v13 names topics
//   by id: an unknown id is UNKNOWN_TOPIC_ID.
// * Transactions: as in Kafka, transactional batches in a request without a
//   transactional id fail the whole request with
//   TRANSACTIONAL_ID_AUTHORIZATION_FAILED. A producer's first transactional
//   batch in a partition is taken only once the coordinator's state (etcd)
//   shows the partition in that producer's ongoing transaction (KIP-890
//   part 1): else INVALID_TXN_STATE, or INVALID_PRODUCER_EPOCH for a fenced
//   epoch. Later batches of the same transaction need no check. A
//   transactional id with plain batches is accepted, as Kafka does.
// * Idempotent batches (producer id >= 0, ids from InitProducerId) are
//   deduplicated by the tier over the last 5 batches per producer and
//   partition, as Kafka does: a duplicate is answered with its original
//   offset and stored once, a sequence gap is OUT_OF_ORDER_SEQUENCE_NUMBER,
//   an epoch older than the producer's is INVALID_PRODUCER_EPOCH; a new
//   epoch restarts at sequence 0, and an unknown producer id is accepted at
//   any sequence.
// * LogAppendTime is answered -1 (CreateTime); LogStartOffset (v5+) is the
//   tier's.
// * KIP-951 (v10+): a partition answered NOT_LEADER_OR_FOLLOWER carries its
//   current leader (CurrentLeader) when etcd names it, and the response
//   lists those leaders' addresses on the request's listener (NodeEndpoints,
//   Brokers in kmsg; leaderhint.go).
// * The internal topic __consumer_offsets (internal_topics.go): each of its
//   partitions is INVALID_TOPIC_EXCEPTION, as Kafka's ReplicaManager refuses
//   clients ("Cannot append to internal topic"), before its batch is
//   validated; a partition it does not have is UNKNOWN_TOPIC_OR_PARTITION.
//   Kafka lets the client id __admin_client append; Strata has no log there
//   to append to, so it refuses every client.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/metadata/topiccfg"
	"github.com/strata-io/strata/segment/kbatch"
)

const (
	// defaultMaxMessageBytes is Kafka's default max.message.bytes.
	defaultMaxMessageBytes = 1048588
	// appendTimeout is the least a produce may spend opening partitions
	// and waiting for room in the tier's buffer.
	appendTimeout = 30 * time.Second
)

var (
	errMultipleBatches = errors.New("ingest: produce v3+ takes exactly one record batch per partition")
	errControlBatch    = errors.New("ingest: clients cannot write control batches")
	errTooLarge        = errors.New("ingest: record batch larger than max.message.bytes")
	errNoKey           = errors.New("ingest: compacted topics take only records with a key")
)

// producePart is one partition of a produce request while it is handled.
type producePart struct {
	resp *kmsg.ProduceResponseTopicPartition
	hdr  kbatch.Header
	// wait, when set, reports the batch's durability (acks=-1).
	wait func(context.Context) error
}

func (s *Server) handleProduce(ctx context.Context, r *request, req *kmsg.ProduceRequest) (kmsg.Response, func(context.Context) kmsg.Response) {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		st := &resp.Topics[i]
		st.Default()
		st.Topic = rt.Topic
		st.TopicID = rt.TopicID
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		for j, rp := range rt.Partitions {
			st.Partitions[j].Default()
			st.Partitions[j].Partition = rp.Partition
		}
	}
	// ErrorMessage exists from v8; kmsg leaves it out of older versions,
	// and acks=0 logging reads it whatever the version.
	fail := func(sp *kmsg.ProduceResponseTopicPartition, code int16, err error) {
		sp.ErrorCode = code
		sp.ErrorMessage = errMessage(err)
	}
	failAll := func(code int16, err error) {
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				fail(&resp.Topics[i].Partitions[j], code, err)
			}
		}
	}

	switch req.Acks {
	case -1, 0, 1:
	default:
		failAll(kerr.InvalidRequiredAcks.Code, fmt.Errorf("ingest: acks must be -1, 0 or 1, not %d", req.Acks))
		return resp, nil
	}

	// acks=-1 waits at most TimeoutMillis from arrival for durability, as
	// Kafka's delayed produce does (0 or less: not at all). Opening
	// partitions and waiting for room in the tier's buffer are not
	// replication, which is all Kafka's timeout bounds: they get at least
	// appendTimeout.
	deadline := r.arrived.Add(time.Duration(max(req.TimeoutMillis, 0)) * time.Millisecond)
	appendDeadline := r.arrived.Add(max(time.Duration(req.TimeoutMillis)*time.Millisecond, appendTimeout))

	// Validate every partition first: Kafka refuses the whole request when
	// transactional batches come without a transactional id.
	topics := make([]metadata.Topic, len(req.Topics))
	parts := make([][]producePart, len(req.Topics))
	transactional := false
	for i, rt := range req.Topics {
		parts[i] = make([]producePart, len(rt.Partitions))
		t, terr := s.produceTopic(req.Version, rt)
		if terr == nil {
			topics[i] = t
			resp.Topics[i].Topic = t.Name
		}
		for j, rp := range rt.Partitions {
			pp := &parts[i][j]
			pp.resp = &resp.Topics[i].Partitions[j]
			if terr != nil {
				fail(pp.resp, terr.Code, terr)
				continue
			}
			if rp.Partition < 0 || rp.Partition >= t.Partitions {
				fail(pp.resp, kerr.UnknownTopicOrPartition.Code, fmt.Errorf("ingest: topic %q has no partition %d", t.Name, rp.Partition))
				continue
			}
			if isInternalTopic(t.Name) {
				fail(pp.resp, kerr.InvalidTopicException.Code, fmt.Errorf("ingest: cannot append to internal topic %s: Strata keeps group offsets in etcd", t.Name))
				continue
			}
			hdr, err := validateProduceBatch(rp.Records, maxMessageBytes(t), isCompacted(t))
			if err != nil {
				fail(pp.resp, produceErrCode(err), err)
				continue
			}
			pp.hdr = hdr
			transactional = transactional || hdr.IsTransactional()
		}
	}
	if transactional && req.TransactionID == nil {
		failAll(kerr.TransactionalIDAuthorizationFailed.Code, errors.New("ingest: transactional batches need a transactional id"))
		if req.Acks == 0 {
			s.log.Info("acks=0 produce refused: transactional batches without a transactional id")
			return nil, nil
		}
		return resp, nil
	}

	appendCtx, cancel := context.WithDeadline(ctx, appendDeadline)
	defer cancel()
	if len(req.Topics) > 1 || len(req.Topics) == 1 && len(req.Topics[0].Partitions) > 1 {
		var tps []metadata.TP
		for i, rt := range req.Topics {
			for j, rp := range rt.Partitions {
				if parts[i][j].resp.ErrorCode == 0 {
					tps = append(tps, metadata.TP{Topic: topics[i].Name, Partition: rp.Partition})
				}
			}
		}
		s.tier.OpenAll(appendCtx, tps)
	}
	var records int64
	for i, rt := range req.Topics {
		for j, rp := range rt.Partitions {
			pp := &parts[i][j]
			if pp.resp.ErrorCode != 0 {
				continue
			}
			tp := metadata.TP{Topic: topics[i].Name, Partition: rp.Partition}
			p, err := s.tier.Partition(appendCtx, tp)
			if err != nil {
				fail(pp.resp, errCode(err), err)
				continue
			}
			var (
				base int64
				wait func(context.Context) error
			)
			if h := pp.hdr; h.IsTransactional() {
				id := *req.TransactionID
				base, wait, err = p.AppendTxn(appendCtx, rp.Records, h, func(ctx context.Context) error {
					return s.txns.Verify(ctx, id, h.ProducerID, h.ProducerEpoch, tp)
				})
			} else {
				base, wait, err = p.Append(appendCtx, rp.Records, pp.hdr)
			}
			if err != nil {
				fail(pp.resp, errCode(err), err)
				continue
			}
			pp.resp.BaseOffset = base
			pp.resp.LogAppendTime = -1
			pp.resp.LogStartOffset = p.LogStartOffset()
			pp.wait = wait
			records += int64(pp.hdr.NumRecords)
			s.traffic.produced(tp, int64(len(rp.Records)), int64(pp.hdr.NumRecords))
		}
	}
	s.m.records.Add(float64(records))

	switch req.Acks {
	case 0:
		s.logAcks0Errors(r, resp)
		return nil, nil
	case 1:
		s.produceLeaderHints(r, resp, topics)
		return resp, nil
	}
	return nil, func(ctx context.Context) kmsg.Response {
		ctx, cancel := context.WithDeadline(ctx, deadline)
		defer cancel()
		for i := range parts {
			for j := range parts[i] {
				pp := &parts[i][j]
				if pp.wait == nil {
					continue
				}
				if err := pp.wait(ctx); err != nil {
					fail(pp.resp, errCode(err), err)
				}
			}
		}
		s.produceLeaderHints(r, resp, topics)
		return resp
	}
}

// produceLeaderHints names the current leader of each partition answered
// NOT_LEADER_OR_FOLLOWER, and lists those leaders' addresses (KIP-951,
// v10+); topics are the request's topics as resolved.
func (s *Server) produceLeaderHints(r *request, resp *kmsg.ProduceResponse, topics []metadata.Topic) {
	if resp.Version < 10 {
		return
	}
	var ids []int32
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			sp := &resp.Topics[i].Partitions[j]
			if sp.ErrorCode != kerr.NotLeaderForPartition.Code || topics[i].Name == "" {
				continue
			}
			if id, epoch, ok := s.leaderHint(metadata.TP{Topic: topics[i].Name, Partition: sp.Partition}); ok {
				sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = id, epoch
				ids = append(ids, id)
			}
		}
	}
	for _, ne := range s.leaderEndpoints(r.listener, ids) {
		b := kmsg.NewProduceResponseBroker()
		b.NodeID, b.Host, b.Port, b.Rack = ne.id, ne.host, ne.port, ne.rack
		resp.Brokers = append(resp.Brokers, b)
	}
}

// produceTopic resolves a produce request's topic: by id from v13, else by
// name.
func (s *Server) produceTopic(version int16, rt kmsg.ProduceRequestTopic) (metadata.Topic, *kerr.Error) {
	if version >= 13 {
		t, ok := s.clientTopicByID(rt.TopicID)
		if !ok {
			return t, kerr.UnknownTopicID
		}
		return t, nil
	}
	t, ok := s.clientTopic(rt.Topic)
	if !ok {
		return t, kerr.UnknownTopicOrPartition
	}
	return t, nil
}

// validateProduceBatch checks one partition's records: size, then
// kbatch.Validate, then the rules for client batches that ingest owns.
func validateProduceBatch(records []byte, maxBytes int, compacted bool) (kbatch.Header, error) {
	if len(records) > maxBytes {
		return kbatch.Header{}, fmt.Errorf("%w: %d bytes, the limit is %d", errTooLarge, len(records), maxBytes)
	}
	hdrs, err := kbatch.Validate(records)
	if err != nil {
		return kbatch.Header{}, err
	}
	if len(hdrs) != 1 {
		return kbatch.Header{}, fmt.Errorf("%w: got %d", errMultipleBatches, len(hdrs))
	}
	if hdrs[0].IsControl() {
		return kbatch.Header{}, errControlBatch
	}
	if compacted {
		// As Kafka: a compacted topic keeps the latest record per key, so
		// a record without one is refused.
		recs, err := kbatch.Records(records)
		if err != nil {
			return kbatch.Header{}, err
		}
		for _, r := range recs {
			if r.Key == nil {
				return kbatch.Header{}, fmt.Errorf("%w: offset delta %d", errNoKey, r.Offset-hdrs[0].BaseOffset)
			}
		}
	}
	return hdrs[0], nil
}

// isCompacted reports whether t's cleanup.policy includes compact.
func isCompacted(t metadata.Topic) bool {
	v, ok := t.Configs["cleanup.policy"]
	return ok && slices.Contains(topiccfg.SplitList(v), "compact")
}

// produceErrCode maps a validation error of one partition.
func produceErrCode(err error) int16 {
	switch {
	case errors.Is(err, errTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, errMultipleBatches), errors.Is(err, errControlBatch), errors.Is(err, errNoKey):
		return kerr.InvalidRecord.Code
	}
	return errCode(err)
}

// maxMessageBytes is the topic's max.message.bytes, or Kafka's default.
func maxMessageBytes(t metadata.Topic) int {
	if v, ok := t.Configs["max.message.bytes"]; ok {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			return n
		}
	}
	return defaultMaxMessageBytes
}

// logAcks0Errors logs what an acks=0 producer will never be told.
func (s *Server) logAcks0Errors(r *request, resp *kmsg.ProduceResponse) {
	for _, st := range resp.Topics {
		for _, sp := range st.Partitions {
			if sp.ErrorCode == 0 {
				continue
			}
			msg := ""
			if sp.ErrorMessage != nil {
				msg = *sp.ErrorMessage
			}
			s.log.Info("acks=0 produce failed", "client_id", clientID(r), "topic", st.Topic,
				"partition", sp.Partition, "code", kerr.ErrorForCode(sp.ErrorCode), "detail", msg)
		}
	}
}
