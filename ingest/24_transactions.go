package ingest

// Transactions (ingest/txn is the coordinator; its doc says how state is
// kept). The requests, with the versions served:
// * FindCoordinator key type 1 (transactional id): the live node rendezvous
//   hashing of the id picks, as for groups (answered in 10_find_coordinator).
// * InitProducerId with a transactional id (22_init_producer_id): epoch bump
//   and fencing, transaction.timeout.ms bounded by TransactionMaxTimeout
//   (INVALID_TRANSACTION_TIMEOUT past it).
// * AddPartitionsToTxn v0-v5: v4+ batches transactions and has KIP-890
//   part 1's verify-only form. AddOffsetsToTxn v0-v4. EndTxn v0-v4: the
//   markers are durable before the answer. EndTxn v5 and TxnOffsetCommit v5
//   (KIP-890 part 2, transaction version 2) are not served, and the
//   transaction.version feature is not advertised, so Kafka 4 clients use
//   the classic protocol.
// * TxnOffsetCommit v0-v4, on the group coordinator (ingest/group).
// * WriteTxnMarkers v0-v1: how a coordinator asks another node to write a
//   marker into a partition that node leads. Like Kafka's, it is meant for
//   brokers only; until ACLs exist (CLUSTER_ACTION) any client can send it.
// * DescribeTransactions v0, ListTransactions v0-v1: the ids this node
//   coordinates.
// Errors of a fenced producer are PRODUCER_FENCED from the versions that know
// it (KIP-588), INVALID_PRODUCER_EPOCH before.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/ingest/txn"
	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/tier"
)

// txnTimeout bounds the etcd work of one transaction request.
const txnTimeout = 30 * time.Second

func (s *Server) newTxnCoordinator() *txn.Coordinator {
	return txn.New(txn.Config{
		NodeID: s.cfg.NodeID,
		Owner: func(id string) (int32, string, int32, bool) {
			n, ok := s.meta.AssignedNodeFor("txn/" + id)
			if !ok {
				// No live nodes registered (a server used on its own,
				// as in tests): this one coordinates everything.
				return s.cfg.NodeID, s.cfg.AdvertisedHost, s.cfg.AdvertisedPort, true
			}
			return n.ID, n.Host, n.Port, ok
		},
		Serving: s.meta.HoldsLease,
		NewProducerID: func(ctx context.Context) (int64, error) {
			return s.pids.take(ctx, s.meta)
		},
		WriteMarker:  s.writeMarker,
		MaxTimeout:   s.cfg.TransactionMaxTimeout,
		ScanInterval: s.cfg.TransactionScanInterval,
		AfterPrepare: s.cfg.txnAfterPrepare,
	}, s.meta, s.log)
}

// writeMarker writes m into tp and waits until it is durable: here when
// this node leads tp, else through WriteTxnMarkers to the leader.
func (s *Server) writeMarker(ctx context.Context, tp metadata.TP, m tier.Marker) error {
	p, err := s.tier.Partition(ctx, tp)
	if err == nil {
		_, wait, err := p.AppendMarker(ctx, m)
		if err != nil {
			return err
		}
		return wait(ctx)
	}
	if !errors.Is(err, tier.ErrNotLeader) {
		return err
	}
	cl, err := s.peerClient()
	if err != nil {
		return err
	}
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	req.Version = 1
	rm := kmsg.NewWriteTxnMarkersRequestMarker()
	rm.ProducerID, rm.ProducerEpoch, rm.Committed, rm.CoordinatorEpoch = m.ProducerID, m.ProducerEpoch, m.Commit, m.Seq
	rt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
	rt.Topic, rt.Partitions = tp.Topic, []int32{tp.Partition}
	rm.Topics = []kmsg.WriteTxnMarkersRequestMarkerTopic{rt}
	req.Markers = []kmsg.WriteTxnMarkersRequestMarker{rm}
	kresp, err := req.RequestWith(ctx, cl)
	if err != nil {
		cl.ForceMetadataRefresh()
		return fmt.Errorf("ingest: WriteTxnMarkers for %s/%d: %w", tp.Topic, tp.Partition, err)
	}
	for _, mk := range kresp.Markers {
		for _, t := range mk.Topics {
			for _, pr := range t.Partitions {
				if pr.ErrorCode != 0 {
					cl.ForceMetadataRefresh()
					return fmt.Errorf("ingest: WriteTxnMarkers for %s/%d: %w", tp.Topic, tp.Partition, kerr.ErrorForCode(pr.ErrorCode))
				}
			}
		}
	}
	return nil
}

// peerClient is the client that reaches other nodes' Kafka listeners,
// seeded with this node's own advertised address.
func (s *Server) peerClient() (*kgo.Client, error) {
	s.peersMu.Lock()
	defer s.peersMu.Unlock()
	if s.peersClosed {
		return nil, tier.ErrClosed
	}
	if s.peers != nil {
		return s.peers, nil
	}
	addr := net.JoinHostPort(s.cfg.AdvertisedHost, strconv.Itoa(int(s.cfg.AdvertisedPort)))
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID("strata-node-"+strconv.Itoa(int(s.cfg.NodeID))), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		return nil, err
	}
	s.peers = cl
	return cl, nil
}

func (s *Server) handleAddPartitionsToTxn(ctx context.Context, req *kmsg.AddPartitionsToTxnRequest) *kmsg.AddPartitionsToTxnResponse {
	ctx, cancel := context.WithTimeout(ctx, txnTimeout)
	defer cancel()
	return s.txns.AddPartitionsToTxn(ctx, req)
}

func (s *Server) handleAddOffsetsToTxn(ctx context.Context, req *kmsg.AddOffsetsToTxnRequest) *kmsg.AddOffsetsToTxnResponse {
	ctx, cancel := context.WithTimeout(ctx, txnTimeout)
	defer cancel()
	return s.txns.AddOffsetsToTxn(ctx, req)
}

func (s *Server) handleEndTxn(ctx context.Context, req *kmsg.EndTxnRequest) *kmsg.EndTxnResponse {
	ctx, cancel := context.WithTimeout(ctx, txnTimeout+5*time.Second)
	defer cancel()
	return s.txns.EndTxn(ctx, req)
}

func (s *Server) handleDescribeTransactions(ctx context.Context, req *kmsg.DescribeTransactionsRequest) *kmsg.DescribeTransactionsResponse {
	ctx, cancel := context.WithTimeout(ctx, txnTimeout)
	defer cancel()
	return s.txns.DescribeTransactions(ctx, req)
}

func (s *Server) handleListTransactions(ctx context.Context, req *kmsg.ListTransactionsRequest) *kmsg.ListTransactionsResponse {
	ctx, cancel := context.WithTimeout(ctx, txnTimeout)
	defer cancel()
	return s.txns.ListTransactions(ctx, req)
}

func (s *Server) handleTxnOffsetCommit(req *kmsg.TxnOffsetCommitRequest) func(context.Context) kmsg.Response {
	return func(ctx context.Context) kmsg.Response {
		ctx, cancel := context.WithTimeout(ctx, txnTimeout)
		defer cancel()
		return s.groups.TxnOffsetCommit(ctx, req)
	}
}

// handleWriteTxnMarkers appends each marker to the partitions this node
// leads and answers once they are durable (on the writer).
func (s *Server) handleWriteTxnMarkers(ctx context.Context, req *kmsg.WriteTxnMarkersRequest) func(context.Context) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	type pending struct {
		code *int16
		wait func(context.Context) error
	}
	var waits []pending
	for _, rm := range req.Markers {
		sm := kmsg.NewWriteTxnMarkersResponseMarker()
		sm.ProducerID = rm.ProducerID
		for _, rt := range rm.Topics {
			st := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
			st.Topic = rt.Topic
			st.Partitions = make([]kmsg.WriteTxnMarkersResponseMarkerTopicPartition, len(rt.Partitions))
			for i, part := range rt.Partitions {
				st.Partitions[i].Partition = part
			}
			sm.Topics = append(sm.Topics, st)
		}
		resp.Markers = append(resp.Markers, sm)
	}
	for i, rm := range req.Markers {
		m := tier.Marker{ProducerID: rm.ProducerID, ProducerEpoch: rm.ProducerEpoch, Commit: rm.Committed, Seq: rm.CoordinatorEpoch}
		for j, rt := range rm.Topics {
			for k, part := range rt.Partitions {
				sp := &resp.Markers[i].Topics[j].Partitions[k]
				if _, ok := s.meta.Topic(rt.Topic); !ok {
					sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
					continue
				}
				p, err := s.tier.Partition(ctx, metadata.TP{Topic: rt.Topic, Partition: part})
				if err != nil {
					sp.ErrorCode = errCode(err)
					continue
				}
				_, wait, err := p.AppendMarker(ctx, m)
				if err != nil {
					sp.ErrorCode = errCode(err)
					continue
				}
				waits = append(waits, pending{code: &sp.ErrorCode, wait: wait})
			}
		}
	}
	return func(ctx context.Context) kmsg.Response {
		ctx, cancel := context.WithTimeout(ctx, txnTimeout)
		defer cancel()
		for _, w := range waits {
			if err := w.wait(ctx); err != nil {
				*w.code = errCode(err)
			}
		}
		return resp
	}
}

// findTxnCoordinator answers FindCoordinator for transactional ids.
func (s *Server) findTxnCoordinator(req *kmsg.FindCoordinatorRequest) *kmsg.FindCoordinatorResponse {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	if req.Version < 4 {
		resp.NodeID, resp.Host, resp.Port, resp.ErrorCode = s.txns.Find(req.CoordinatorKey)
		return resp
	}
	for _, key := range req.CoordinatorKeys {
		rc := kmsg.NewFindCoordinatorResponseCoordinator()
		rc.Key = key
		rc.NodeID, rc.Host, rc.Port, rc.ErrorCode = s.txns.Find(key)
		resp.Coordinators = append(resp.Coordinators, rc)
	}
	return resp
}
