package txn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/tier"
)

// Store is what the coordinator needs of metadata.
type Store interface {
	GetTxn(ctx context.Context, id string) (metadata.TxnState, bool, error)
	PutTxn(ctx context.Context, st metadata.TxnState) (metadata.TxnState, bool, error)
	ListTxns(ctx context.Context) ([]metadata.TxnState, error)
	EndTxnOffsets(ctx context.Context, group string, txn metadata.TxnState, commit bool) error
	Topic(name string) (metadata.Topic, bool)
}

// Config wires a Coordinator into its node.
type Config struct {
	NodeID int32
	// Owner names the live node that coordinates a transactional id
	// (rendezvous hashing, as for groups). ok false: no live node.
	Owner func(txnID string) (nodeID int32, host string, port int32, ok bool)
	// Serving reports whether this node holds its etcd lease.
	Serving func() bool
	// NewProducerID hands out an unused producer id.
	NewProducerID func(ctx context.Context) (int64, error)
	// WriteMarker writes a marker into one partition, wherever its leader
	// is, and returns once it is durable.
	WriteMarker func(ctx context.Context, tp metadata.TP, m tier.Marker) error
	// MaxTimeout bounds transaction.timeout.ms (Kafka's
	// transaction.max.timeout.ms, 15 minutes by default).
	MaxTimeout time.Duration
	// ScanInterval is how often the coordinator looks for expired and
	// unfinished transactions; 0 means 1 s.
	ScanInterval time.Duration
	// CompleteTimeout bounds writing one transaction's markers; 0 means
	// 30 s. An unfinished end stays prepared, and the scan finishes it.
	CompleteTimeout time.Duration
	// AfterPrepare, when set, is called by EndTxn once the prepared state
	// is in etcd, before any marker: an error stops EndTxn there, as if
	// the coordinator had died. A fault hook for tests.
	AfterPrepare func(metadata.TxnState) error
}

// Coordinator is one node's transaction coordinator.
type Coordinator struct {
	cfg   Config
	store Store
	log   *slog.Logger
	// locks serialises the requests of one transactional id (and only
	// of that id: a slow end does not hold up others).
	mu    sync.Mutex
	locks map[string]*idLock

	stop chan struct{}
	done chan struct{}
}

// New starts a coordinator; Close stops its scan.
func New(cfg Config, store Store, logger *slog.Logger) *Coordinator {
	if cfg.MaxTimeout <= 0 {
		cfg.MaxTimeout = 15 * time.Minute
	}
	if cfg.ScanInterval <= 0 {
		cfg.ScanInterval = time.Second
	}
	if cfg.CompleteTimeout <= 0 {
		cfg.CompleteTimeout = 30 * time.Second
	}
	c := &Coordinator{cfg: cfg, store: store, log: logger, locks: map[string]*idLock{}, stop: make(chan struct{}), done: make(chan struct{})}
	go c.scanLoop()
	return c
}

// Close stops the scan and waits for it.
func (c *Coordinator) Close() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
}

// idLock is one transactional id's lock, kept while anyone holds or waits
// for it.
type idLock struct {
	sync.Mutex
	refs int
}

func (c *Coordinator) lock(id string) func() {
	c.mu.Lock()
	l := c.locks[id]
	if l == nil {
		l = &idLock{}
		c.locks[id] = l
	}
	l.refs++
	c.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		c.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(c.locks, id)
		}
		c.mu.Unlock()
	}
}

// owns reports whether this node coordinates id now.
func (c *Coordinator) owns(id string) bool {
	if c.cfg.Serving != nil && !c.cfg.Serving() {
		return false
	}
	n, _, _, ok := c.cfg.Owner(id)
	return ok && n == c.cfg.NodeID
}

// Find answers FindCoordinator for a transactional id.
func (c *Coordinator) Find(id string) (nodeID int32, host string, port int32, code int16) {
	n, h, p, ok := c.cfg.Owner(id)
	if !ok {
		return -1, "", -1, kerr.CoordinatorNotAvailable.Code
	}
	return n, h, p, 0
}

// maxBumpableEpoch is the highest epoch that can still be bumped: Kafka
// never hands out 32767.
const maxBumpableEpoch = math.MaxInt16 - 2

// fencedCode is what a request from a fenced producer hears: PRODUCER_FENCED
// from the versions that know it (KIP-588), INVALID_PRODUCER_EPOCH before.
func fencedCode(version, since int16) int16 {
	if version >= since {
		return kerr.ProducerFenced.Code
	}
	return kerr.InvalidProducerEpoch.Code
}

var errConflict = errors.New("txn: state changed concurrently")

// update reads id's state, lets fn change it, and writes it back,
// retrying a few times when another writer got there first. fn returns a
// Kafka error code to stop without writing (0 with write false: nothing to
// write).
func (c *Coordinator) update(ctx context.Context, id string, fn func(st *metadata.TxnState, found bool) (code int16, write bool)) (metadata.TxnState, int16, error) {
	for attempt := 0; attempt < 5; attempt++ {
		st, found, err := c.store.GetTxn(ctx, id)
		if err != nil {
			return st, 0, err
		}
		code, write := fn(&st, found)
		if code != 0 || !write {
			return st, code, nil
		}
		nst, ok, err := c.store.PutTxn(ctx, st)
		if err != nil {
			return st, 0, err
		}
		if ok {
			return nst, 0, nil
		}
	}
	return metadata.TxnState{}, 0, errConflict
}

// storeCode is the answer when etcd failed: retriable.
func (c *Coordinator) storeCode(op, id string, err error) int16 {
	c.log.Warn("txn: etcd failed", "op", op, "transactional_id", id, "err", err)
	return kerr.CoordinatorLoadInProgress.Code
}

// InitProducerID handles InitProducerId with a transactional id.
func (c *Coordinator) InitProducerID(ctx context.Context, req *kmsg.InitProducerIDRequest) *kmsg.InitProducerIDResponse {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	fail := func(code int16) *kmsg.InitProducerIDResponse {
		resp.ErrorCode, resp.ProducerID, resp.ProducerEpoch = code, -1, -1
		return resp
	}
	id := *req.TransactionalID
	if !c.owns(id) {
		return fail(kerr.NotCoordinator.Code)
	}
	if req.TransactionTimeoutMillis <= 0 || time.Duration(req.TransactionTimeoutMillis)*time.Millisecond > c.cfg.MaxTimeout {
		return fail(kerr.InvalidTransactionTimeout.Code)
	}
	defer c.lock(id)()
	// An unfinished transaction ends first: a prepared one as decided, an
	// ongoing one aborted under a bumped epoch (fencing its producer).
	for i := range 3 {
		st, found, err := c.store.GetTxn(ctx, id)
		if err != nil {
			return fail(c.storeCode("init", id, err))
		}
		if !found {
			break
		}
		if i == 0 && req.ProducerID >= 0 && (req.ProducerID != st.ProducerID || req.ProducerEpoch != st.ProducerEpoch) {
			// KIP-360: a producer asking to bump an epoch that is not
			// the current one has been fenced.
			return fail(fencedCode(req.Version, 4))
		}
		switch st.State {
		case metadata.TxnOngoing:
			if err := c.abortFenced(ctx, st); err != nil {
				c.log.Warn("txn: aborting the ongoing transaction for InitProducerId", "transactional_id", id, "err", err)
				return fail(kerr.ConcurrentTransactions.Code)
			}
			continue
		case metadata.TxnPrepareCommit, metadata.TxnPrepareAbort:
			if err := c.complete(ctx, st); err != nil {
				c.log.Warn("txn: completing the prepared transaction for InitProducerId", "transactional_id", id, "err", err)
				return fail(kerr.ConcurrentTransactions.Code)
			}
			continue
		}
		break
	}
	var newPID int64 = -1
	st, code, err := c.update(ctx, id, func(st *metadata.TxnState, found bool) (int16, bool) {
		switch {
		case !found || st.ProducerEpoch >= maxBumpableEpoch:
			if newPID < 0 {
				pid, err := c.cfg.NewProducerID(ctx)
				if err != nil {
					c.log.Warn("txn: reserving a producer id", "err", err)
					return kerr.CoordinatorLoadInProgress.Code, false
				}
				newPID = pid
			}
			st.ProducerID, st.ProducerEpoch = newPID, 0
		case st.State == metadata.TxnOngoing || st.State == metadata.TxnPrepareCommit || st.State == metadata.TxnPrepareAbort:
			return kerr.ConcurrentTransactions.Code, false
		default:
			st.ProducerEpoch++
		}
		st.State = metadata.TxnEmpty
		st.TimeoutMs = req.TransactionTimeoutMillis
		st.Partitions, st.Groups = nil, nil
		return 0, true
	})
	if err != nil {
		return fail(c.storeCode("init", id, err))
	}
	if code != 0 {
		return fail(code)
	}
	c.log.Info("txn: producer initialised", "transactional_id", id, "producer_id", st.ProducerID, "epoch", st.ProducerEpoch)
	resp.ProducerID, resp.ProducerEpoch = st.ProducerID, st.ProducerEpoch
	return resp
}

// checkProducer is Kafka's check of a request's producer id and epoch
// against the state; 0 when they match.
func checkProducer(st *metadata.TxnState, found bool, pid int64, epoch int16, version, fencedSince int16) int16 {
	switch {
	case !found || st.ProducerID != pid:
		return kerr.InvalidProducerIDMapping.Code
	case epoch != st.ProducerEpoch:
		return fencedCode(version, fencedSince)
	}
	return 0
}

// addPartitions adds tps to id's transaction (beginning one if none is
// ongoing) and returns a code per partition's topic validity through bad.
func (c *Coordinator) addPartitions(ctx context.Context, id string, pid int64, epoch int16, version, fencedSince int16, tps []metadata.TP, groups []string) int16 {
	if !c.owns(id) {
		return kerr.NotCoordinator.Code
	}
	defer c.lock(id)()
	_, code, err := c.update(ctx, id, func(st *metadata.TxnState, found bool) (int16, bool) {
		if code := checkProducer(st, found, pid, epoch, version, fencedSince); code != 0 {
			return code, false
		}
		changed := false
		switch st.State {
		case metadata.TxnPrepareCommit, metadata.TxnPrepareAbort:
			return kerr.ConcurrentTransactions.Code, false
		case metadata.TxnOngoing:
		default:
			changed = true
			st.State = metadata.TxnOngoing
			st.Seq++
			st.StartMs = time.Now().UnixMilli()
			st.Partitions, st.Groups = nil, nil
		}
		for _, tp := range tps {
			if !st.HasPartition(tp) {
				st.Partitions = append(st.Partitions, tp)
				changed = true
			}
		}
		for _, g := range groups {
			if !slices.Contains(st.Groups, g) {
				st.Groups = append(st.Groups, g)
				changed = true
			}
		}
		return 0, changed
	})
	if err != nil {
		return c.storeCode("add", id, err)
	}
	return code
}

// AddPartitionsToTxn handles v0-v5. v4+ batches transactions and has the
// verify-only form of KIP-890 part 1, which only checks membership.
func (c *Coordinator) AddPartitionsToTxn(ctx context.Context, req *kmsg.AddPartitionsToTxnRequest) *kmsg.AddPartitionsToTxnResponse {
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if req.Version < 4 {
		topics := make([]kmsg.AddPartitionsToTxnRequestTransactionTopic, len(req.Topics))
		for i, t := range req.Topics {
			topics[i] = kmsg.AddPartitionsToTxnRequestTransactionTopic{Topic: t.Topic, Partitions: t.Partitions}
		}
		codes := c.addTopics(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, false, req.Version, topics)
		resp.Topics = toV3Topics(codes)
		return resp
	}
	for _, t := range req.Transactions {
		rt := kmsg.NewAddPartitionsToTxnResponseTransaction()
		rt.TransactionalID = t.TransactionalID
		rt.Topics = c.addTopics(ctx, t.TransactionalID, t.ProducerID, t.ProducerEpoch, t.VerifyOnly, req.Version, t.Topics)
		resp.Transactions = append(resp.Transactions, rt)
	}
	return resp
}

func toV3Topics(in []kmsg.AddPartitionsToTxnResponseTransactionTopic) []kmsg.AddPartitionsToTxnResponseTopic {
	out := make([]kmsg.AddPartitionsToTxnResponseTopic, len(in))
	for i, t := range in {
		out[i] = kmsg.AddPartitionsToTxnResponseTopic{Topic: t.Topic}
		for _, p := range t.Partitions {
			out[i].Partitions = append(out[i].Partitions, kmsg.AddPartitionsToTxnResponseTopicPartition{Partition: p.Partition, ErrorCode: p.ErrorCode})
		}
	}
	return out
}

// addTopics adds (or, verifyOnly, checks) one transaction's partitions and
// answers each.
func (c *Coordinator) addTopics(ctx context.Context, id string, pid int64, epoch int16, verifyOnly bool, version int16, topics []kmsg.AddPartitionsToTxnRequestTransactionTopic) []kmsg.AddPartitionsToTxnResponseTransactionTopic {
	out := make([]kmsg.AddPartitionsToTxnResponseTransactionTopic, len(topics))
	var tps []metadata.TP
	unknown := false
	for i, t := range topics {
		out[i].Topic = t.Topic
		top, ok := c.store.Topic(t.Topic)
		for _, p := range t.Partitions {
			code := int16(0)
			if !ok || p < 0 || p >= top.Partitions {
				code, unknown = kerr.UnknownTopicOrPartition.Code, true
			}
			out[i].Partitions = append(out[i].Partitions, kmsg.AddPartitionsToTxnResponseTransactionTopicPartition{Partition: p, ErrorCode: code})
			tps = append(tps, metadata.TP{Topic: t.Topic, Partition: p})
		}
	}
	setAll := func(code int16, onlyOK bool) []kmsg.AddPartitionsToTxnResponseTransactionTopic {
		for i := range out {
			for j := range out[i].Partitions {
				if !onlyOK || out[i].Partitions[j].ErrorCode == 0 {
					out[i].Partitions[j].ErrorCode = code
				}
			}
		}
		return out
	}
	if unknown {
		// As Kafka: nothing is added when any partition is unknown.
		return setAll(kerr.OperationNotAttempted.Code, true)
	}
	if verifyOnly {
		st, found, err := c.store.GetTxn(ctx, id)
		if err != nil {
			return setAll(c.storeCode("verify", id, err), false)
		}
		if code := checkProducer(&st, found, pid, epoch, version, 0); code != 0 {
			return setAll(code, false)
		}
		for i := range out {
			for j := range out[i].Partitions {
				tp := metadata.TP{Topic: out[i].Topic, Partition: out[i].Partitions[j].Partition}
				if st.State != metadata.TxnOngoing || !st.HasPartition(tp) {
					out[i].Partitions[j].ErrorCode = kerr.InvalidTxnState.Code
				}
			}
		}
		return out
	}
	return setAll(c.addPartitions(ctx, id, pid, epoch, version, 2, tps, nil), false)
}

// AddOffsetsToTxn adds a group's offsets to the transaction.
func (c *Coordinator) AddOffsetsToTxn(ctx context.Context, req *kmsg.AddOffsetsToTxnRequest) *kmsg.AddOffsetsToTxnResponse {
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	resp.ErrorCode = c.addPartitions(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Version, 2, nil, []string{req.Group})
	return resp
}

// EndTxn commits or aborts the transaction: it is prepared in etcd, every
// partition gets its marker (durable before the answer), the group offsets
// are applied or dropped, and it is complete.
func (c *Coordinator) EndTxn(ctx context.Context, req *kmsg.EndTxnRequest) *kmsg.EndTxnResponse {
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	id := req.TransactionalID
	if !c.owns(id) {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	}
	defer c.lock(id)()
	prepare, complete := metadata.TxnPrepareAbort, metadata.TxnCompleteAbort
	if req.Commit {
		prepare, complete = metadata.TxnPrepareCommit, metadata.TxnCompleteCommit
	}
	st, code, err := c.update(ctx, id, func(st *metadata.TxnState, found bool) (int16, bool) {
		if code := checkProducer(st, found, req.ProducerID, req.ProducerEpoch, req.Version, 2); code != 0 {
			return code, false
		}
		switch st.State {
		case metadata.TxnOngoing:
			st.State = prepare
			return 0, true
		case prepare, complete:
			return 0, false // a retry: finish it
		}
		return kerr.InvalidTxnState.Code, false
	})
	if err != nil {
		resp.ErrorCode = c.storeCode("end", id, err)
		return resp
	}
	if code != 0 {
		resp.ErrorCode = code
		return resp
	}
	if st.State == complete {
		return resp
	}
	if c.cfg.AfterPrepare != nil {
		if err := c.cfg.AfterPrepare(st); err != nil {
			resp.ErrorCode = kerr.ConcurrentTransactions.Code
			return resp
		}
	}
	if err := c.complete(ctx, st); err != nil {
		c.log.Warn("txn: completing", "transactional_id", id, "state", st.State, "err", err)
		// Prepared: the client retries EndTxn, or the scan finishes it.
		resp.ErrorCode = kerr.ConcurrentTransactions.Code
	}
	return resp
}

// abortFenced aborts an ongoing transaction under a bumped epoch, so that
// its producer, if still alive, is fenced (a timeout, or a new producer's
// InitProducerId).
func (c *Coordinator) abortFenced(ctx context.Context, st metadata.TxnState) error {
	if st.ProducerEpoch < maxBumpableEpoch {
		st.ProducerEpoch++
	}
	st.State = metadata.TxnPrepareAbort
	nst, ok, err := c.store.PutTxn(ctx, st)
	if err != nil {
		return err
	}
	if !ok {
		return errConflict
	}
	return c.complete(ctx, nst)
}

// complete finishes a prepared transaction: markers, then group offsets,
// then the complete state. Every step may be repeated: a partition drops a
// marker it has, and the offsets are applied once.
func (c *Coordinator) complete(ctx context.Context, st metadata.TxnState) error {
	commit := st.State == metadata.TxnPrepareCommit
	if !commit && st.State != metadata.TxnPrepareAbort {
		return fmt.Errorf("txn: complete in state %s", st.State)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.CompleteTimeout)
	defer cancel()
	m := tier.Marker{ProducerID: st.ProducerID, ProducerEpoch: st.ProducerEpoch, Commit: commit, Seq: st.Seq}
	errs := make([]error, len(st.Partitions))
	var wg sync.WaitGroup
	for i, tp := range st.Partitions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.writeMarker(ctx, tp, m)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, g := range st.Groups {
		if err := c.store.EndTxnOffsets(ctx, g, st, commit); errors.Is(err, metadata.ErrTxnMoved) {
			// Another coordinator finished this transaction meanwhile.
			return c.checkFinished(ctx, st)
		} else if err != nil {
			return fmt.Errorf("group %q offsets: %w", g, err)
		}
	}
	st.State = metadata.TxnCompleteAbort
	if commit {
		st.State = metadata.TxnCompleteCommit
	}
	if _, ok, err := c.store.PutTxn(ctx, st); err != nil {
		return err
	} else if !ok {
		return c.checkFinished(ctx, st)
	}
	c.log.Debug("txn: completed", "transactional_id", st.TransactionalID, "state", st.State, "partitions", len(st.Partitions))
	return nil
}

// checkFinished is called when st's key changed under a completion: nil
// when someone else finished the transaction, errConflict when it is still
// prepared.
func (c *Coordinator) checkFinished(ctx context.Context, st metadata.TxnState) error {
	cur, _, err := c.store.GetTxn(ctx, st.TransactionalID)
	if err != nil {
		return err
	}
	if cur.Seq == st.Seq && (cur.State == metadata.TxnPrepareCommit || cur.State == metadata.TxnPrepareAbort) {
		return errConflict
	}
	return nil
}

// writeMarker retries one partition's marker until it is durable or ctx
// ends: leaders move, and a new one may need a moment.
func (c *Coordinator) writeMarker(ctx context.Context, tp metadata.TP, m tier.Marker) error {
	backoff := 20 * time.Millisecond
	for {
		err := c.cfg.WriteMarker(ctx, tp, m)
		if err == nil || errors.Is(err, metadata.ErrUnknownTopic) || errors.Is(err, tier.ErrUnknownPartition) {
			// A deleted topic needs no marker.
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("marker for %s/%d: %w", tp.Topic, tp.Partition, err)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Second)
	}
}

// Verify is the partition leader's check (KIP-890 part 1) before it takes
// a producer's first transactional batch in tp: the producer's transaction
// must be ongoing with tp in it.
func (c *Coordinator) Verify(ctx context.Context, id string, pid int64, epoch int16, tp metadata.TP) error {
	st, found, err := c.store.GetTxn(ctx, id)
	if err != nil {
		return fmt.Errorf("%w: %w", tier.ErrStorage, err)
	}
	switch {
	case !found || st.ProducerID != pid:
		return fmt.Errorf("%w: transactional id %q has no producer %d", tier.ErrInvalidTxnState, id, pid)
	case epoch < st.ProducerEpoch:
		return fmt.Errorf("%w: producer %d epoch %d is fenced by %d", tier.ErrInvalidProducerEpoch, pid, epoch, st.ProducerEpoch)
	case epoch > st.ProducerEpoch || st.State != metadata.TxnOngoing || !st.HasPartition(tp):
		return fmt.Errorf("%w: %s/%d was not added to %q's transaction", tier.ErrInvalidTxnState, tp.Topic, tp.Partition, id)
	}
	return nil
}

// scanLoop finishes, on the ids this node coordinates, transactions left
// prepared (a coordinator died mid-way) and aborts those past their
// timeout.
func (c *Coordinator) scanLoop() {
	defer close(c.done)
	t := time.NewTicker(c.cfg.ScanInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-c.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		c.scan(ctx, time.Now())
		cancel()
	}
}

// stuckAfter is how long a prepared transaction is left to the coordinator
// completing it before the scan takes it over.
const stuckAfter = 3 * time.Second

func (c *Coordinator) scan(ctx context.Context, now time.Time) {
	if c.cfg.Serving != nil && !c.cfg.Serving() {
		return
	}
	sts, err := c.store.ListTxns(ctx)
	if err != nil {
		c.log.Warn("txn: listing transactions", "err", err)
		return
	}
	for _, st := range sts {
		if ctx.Err() != nil {
			return
		}
		switch st.State {
		case metadata.TxnOngoing:
			if now.UnixMilli() < st.StartMs+int64(st.TimeoutMs) || !c.owns(st.TransactionalID) {
				continue
			}
			c.scanOne(ctx, st.TransactionalID, "timed out", func(cur metadata.TxnState) error {
				if cur.State != metadata.TxnOngoing || cur.Seq != st.Seq {
					return nil
				}
				return c.abortFenced(ctx, cur)
			})
		case metadata.TxnPrepareCommit, metadata.TxnPrepareAbort:
			if now.UnixMilli() < st.UpdateMs+stuckAfter.Milliseconds() || !c.owns(st.TransactionalID) {
				continue
			}
			c.scanOne(ctx, st.TransactionalID, "left prepared", func(cur metadata.TxnState) error {
				if cur.State != metadata.TxnPrepareCommit && cur.State != metadata.TxnPrepareAbort {
					return nil
				}
				return c.complete(ctx, cur)
			})
		}
	}
}

func (c *Coordinator) scanOne(ctx context.Context, id, why string, fn func(metadata.TxnState) error) {
	defer c.lock(id)()
	cur, found, err := c.store.GetTxn(ctx, id)
	if err != nil || !found {
		return
	}
	c.log.Info("txn: finishing a transaction "+why, "transactional_id", id, "state", cur.State, "producer_id", cur.ProducerID, "epoch", cur.ProducerEpoch)
	if err := fn(cur); err != nil {
		c.log.Warn("txn: finishing a transaction "+why, "transactional_id", id, "err", err)
	}
}
