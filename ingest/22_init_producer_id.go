package ingest

// InitProducerId: v0-v5 served (librdkafka checks for v0 before it enables
// idempotence; kafkajs sends at most v1)
// * A producer without a transactional id gets a new producer id, unique in
//   the cluster and never reused, with epoch 0. Ids come from blocks of
//   producerIDBlock that each node reserves in metadata (etcd), so most
//   requests cost no etcd round trip. When a block cannot be reserved the
//   answer is COORDINATOR_LOAD_IN_PROGRESS, which every client retries, as
//   Kafka answers while its producer id block is not ready.
// * v3+ (KIP-360): a request carrying its current ProducerID and
//   ProducerEpoch asks for an epoch bump and gets the same id with epoch+1;
//   the tier then fences the old epoch (INVALID_PRODUCER_EPOCH) and takes
//   the new one from sequence 0. This is what the Java client does locally
//   for idempotent producers. An epoch that cannot be bumped (Kafka keeps
//   32767 out of use) gets a new id with epoch 0. Exactly one of the two set
//   to -1 is INVALID_REQUEST, as in Kafka.
// * With a transactional id the transaction coordinator answers
//   (ingest/txn): NOT_COORDINATOR on a node that does not coordinate the
//   id; an unfinished transaction of the id is ended first (a prepared one
//   as decided, an ongoing one aborted, fencing its producer), then the
//   epoch is bumped. An empty transactional id is INVALID_REQUEST, as in
//   Kafka. TransactionTimeoutMillis must be in (0, TransactionMaxTimeout].
// * Without one, TransactionTimeoutMillis is ignored.

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
)

// producerIDBlock is how many producer ids a node reserves in metadata at
// once. Ids left over when the node stops are never used: there are 2^63.
const producerIDBlock = 1000

// producerIDPool hands out producer ids from blocks reserved in metadata.
// The zero value is an empty pool that reserves a block on first use.
type producerIDPool struct {
	mu   sync.Mutex
	next int64
	end  int64 // exclusive; next == end: empty
}

// take returns an unused producer id, reserving a new block in metadata
// when the pool is empty. Reservation happens under mu, so concurrent
// requests wait for one reservation instead of each making their own.
func (p *producerIDPool) take(ctx context.Context, meta *metadata.Store) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next >= p.end {
		first, err := meta.AllocateProducerIDs(ctx, producerIDBlock)
		if err != nil {
			return -1, err
		}
		p.next, p.end = first, first+producerIDBlock
		if p.next == 0 {
			// Kafka hands out 0, but zero reads as "unset" in too many
			// places (kbatch.BuildOptions among them) to be worth it.
			p.next = 1
		}
	}
	id := p.next
	p.next++
	return id, nil
}

// maxBumpableEpoch is the highest epoch that can still be bumped: Kafka
// never hands out epoch 32767 (math.MaxInt16), so a producer at 32766 gets
// a new id instead.
const maxBumpableEpoch = math.MaxInt16 - 2

func (s *Server) handleInitProducerID(ctx context.Context, req *kmsg.InitProducerIDRequest) *kmsg.InitProducerIDResponse {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	fail := func(code int16) *kmsg.InitProducerIDResponse {
		resp.ErrorCode = code
		resp.ProducerID = -1
		resp.ProducerEpoch = -1
		return resp
	}
	if req.TransactionalID != nil {
		if *req.TransactionalID == "" {
			return fail(kerr.InvalidRequest.Code)
		}
		ctx, cancel := context.WithTimeout(ctx, txnTimeout+5*time.Second)
		defer cancel()
		return s.txns.InitProducerID(ctx, req)
	}

	// ProducerID and ProducerEpoch exist from v3; kmsg leaves them at -1
	// for older versions.
	switch known := req.ProducerID != -1; {
	case known != (req.ProducerEpoch != -1):
		return fail(kerr.InvalidRequest.Code)
	case known && (req.ProducerID < 0 || req.ProducerEpoch < 0):
		return fail(kerr.InvalidRequest.Code)
	case known && req.ProducerEpoch <= maxBumpableEpoch:
		resp.ProducerID = req.ProducerID
		resp.ProducerEpoch = req.ProducerEpoch + 1
		return resp
	}

	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	id, err := s.pids.take(ctx, s.meta)
	if err != nil {
		s.log.Warn("reserving producer ids failed", "err", err)
		return fail(kerr.CoordinatorLoadInProgress.Code)
	}
	resp.ProducerID = id
	resp.ProducerEpoch = 0
	return resp
}
