package ingest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/segment/kbatch"
)

// txnProducer is a franz-go transactional producer on n.
func txnProducer(t *testing.T, n *testNode, id string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(n.addr), kgo.TransactionalID(id), kgo.ProducerLinger(time.Millisecond),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produceTxn produces values in one transaction and ends it.
func produceTxn(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, commit bool, values ...string) {
	t.Helper()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", v, err)
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatalf("end transaction (commit %v): %v", commit, err)
	}
}

// readAll consumes topic from the start at the isolation level until it
// has want records or ctx ends, and returns the values seen, sorted.
func readAll(t *testing.T, ctx context.Context, n *testNode, topic string, committed bool, want int) []string {
	t.Helper()
	level := kgo.ReadUncommitted()
	if committed {
		level = kgo.ReadCommitted()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.addr), kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(level),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []string
	for len(got) < want && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				t.Errorf("fetch %s/%d: %v", topic, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	sort.Strings(got)
	return got
}

func values(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%03d", prefix, i)
	}
	return out
}

// TestTransactionsCommitShowsAbortHides: with franz-go, a committed
// transaction's records reach read_committed consumers and an aborted
// one's never do; read_uncommitted consumers see both. No marker is ever
// handed to a consumer as a record.
func TestTransactionsCommitShowsAbortHides(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic("tx", 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p := txnProducer(t, n, "tx-1")
	produceTxn(t, ctx, p, "tx", true, values("c1", 10)...)
	produceTxn(t, ctx, p, "tx", false, values("a1", 10)...)
	produceTxn(t, ctx, p, "tx", true, values("c2", 5)...)

	want := append(values("c1", 10), values("c2", 5)...)
	sort.Strings(want)
	short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
	got := readAll(t, short, n, "tx", true, len(want)+1)
	cancelShort()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("read_committed saw %d records %v,\nwant %d %v", len(got), got, len(want), want)
	}
	all := append(append(values("c1", 10), values("a1", 10)...), values("c2", 5)...)
	sort.Strings(all)
	short, cancelShort = context.WithTimeout(ctx, 3*time.Second)
	got = readAll(t, short, n, "tx", false, len(all)+1)
	cancelShort()
	if fmt.Sprint(got) != fmt.Sprint(all) {
		t.Fatalf("read_uncommitted saw %d records %v,\nwant %d %v", len(got), got, len(all), all)
	}
}

// TestOpenTransactionHoldsBackReadCommitted: while a transaction is open,
// read_committed consumers stop at its first offset (the LSO), even for
// records other producers commit after it; ListOffsets latest at
// read_committed is the LSO. The commit releases everything.
func TestOpenTransactionHoldsBackReadCommitted(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic("lso", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	plain, err := kgo.NewClient(kgo.SeedBrokers(n.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.ProduceSync(ctx, &kgo.Record{Topic: "lso", Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	p := txnProducer(t, n, "lso-1")
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Topic: "lso", Value: []byte("in-txn")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := plain.ProduceSync(ctx, &kgo.Record{Topic: "lso", Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.IsolationLevel = 1
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "lso"
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Timestamp = -1
	lt.Partitions = []kmsg.ListOffsetsRequestTopicPartition{lp}
	lo.Topics = []kmsg.ListOffsetsRequestTopic{lt}
	lresp, err := lo.RequestWith(ctx, plain)
	if err != nil {
		t.Fatal(err)
	}
	if got := lresp.Topics[0].Partitions[0].Offset; got != 1 {
		t.Fatalf("ListOffsets latest read_committed = %d during the transaction, want 1 (its first offset)", got)
	}
	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	got := readAll(t, short, n, "lso", true, 3)
	cancelShort()
	if fmt.Sprint(got) != "[before]" {
		t.Fatalf("read_committed during the transaction saw %v, want [before]", got)
	}
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	short, cancelShort = context.WithTimeout(ctx, 5*time.Second)
	got = readAll(t, short, n, "lso", true, 3)
	cancelShort()
	if fmt.Sprint(got) != "[after before in-txn]" {
		t.Fatalf("read_committed after the commit saw %v, want [after before in-txn]", got)
	}
}

// TestNewProducerFencesZombie: a second producer with the same
// transactional id aborts the first one's open transaction and fences it:
// the zombie can neither produce nor commit, and its records never reach
// read_committed consumers.
func TestNewProducerFencesZombie(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic("zombie", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	zombie := txnProducer(t, n, "z-1")
	if err := zombie.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := zombie.ProduceSync(ctx, &kgo.Record{Topic: "zombie", Value: []byte("zombie-1")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fresh := txnProducer(t, n, "z-1")
	produceTxn(t, ctx, fresh, "zombie", true, "fresh-1")

	err := zombie.ProduceSync(ctx, &kgo.Record{Topic: "zombie", Value: []byte("zombie-2")}).FirstErr()
	if err == nil {
		err = zombie.EndTransaction(ctx, kgo.TryCommit)
	}
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) && !errors.Is(err, kerr.InvalidTxnState) {
		t.Fatalf("zombie after the new producer's init: err %v, want a fencing error", err)
	}
	short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
	got := readAll(t, short, n, "zombie", true, 2)
	cancelShort()
	if fmt.Sprint(got) != "[fresh-1]" {
		t.Fatalf("read_committed saw %v, want [fresh-1]", got)
	}
}

// TestTransactionTimeoutAborts: a transaction left open past
// transaction.timeout.ms is aborted by the coordinator; its records never
// reach read_committed consumers, and later records do.
func TestTransactionTimeoutAborts(t *testing.T) {
	n := startNode(t, func(c *Config) { c.TransactionScanInterval = 100 * time.Millisecond })
	n.createTopic("timeout", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p := txnProducer(t, n, "t-1", kgo.TransactionTimeout(time.Second))
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Topic: "timeout", Value: []byte("abandoned")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond)
	if err := p.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Fatalf("commit after the timeout succeeded; the coordinator should have aborted the transaction")
	}
	other := txnProducer(t, n, "t-2")
	produceTxn(t, ctx, other, "timeout", true, "later")
	short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
	got := readAll(t, short, n, "timeout", true, 2)
	cancelShort()
	if fmt.Sprint(got) != "[later]" {
		t.Fatalf("read_committed saw %v, want [later]", got)
	}
}

// TestCoordinatorDeathBetweenPrepareAndComplete: the coordinator stops
// after EndTxn wrote PrepareCommit and before any marker (a fault hook
// stands for its death), and is closed. A successor coordinator on the
// same cluster finds the prepared transaction and completes it: its records
// reach read_committed consumers, and it is CompleteCommit.
func TestCoordinatorDeathBetweenPrepareAndComplete(t *testing.T) {
	prepared := make(chan metadata.TxnState, 1)
	n := startNode(t, func(c *Config) {
		c.txnAfterPrepare = func(st metadata.TxnState) error {
			select {
			case prepared <- st:
			default:
			}
			return errors.New("coordinator died")
		}
	})
	n.createTopic("prep", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p := txnProducer(t, n, "prep-1")
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"a", "b", "c", "d"} {
		if err := p.ProduceSync(ctx, &kgo.Record{Topic: "prep", Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	endCtx, cancelEnd := context.WithCancel(ctx)
	go p.EndTransaction(endCtx, kgo.TryCommit)
	var st metadata.TxnState
	select {
	case st = <-prepared:
	case <-ctx.Done():
		t.Fatal("EndTxn never prepared the transaction")
	}
	cancelEnd()
	if st.State != metadata.TxnPrepareCommit {
		t.Fatalf("state after prepare: %s", st.State)
	}
	closeCtx, cancelClose := context.WithTimeout(ctx, 10*time.Second)
	n.srv.Close(closeCtx)
	cancelClose()

	// The successor: a new coordinator on the same cluster and tier.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	succ := NewServer(Config{NodeID: 1, AdvertisedHost: "127.0.0.1", AdvertisedPort: int32(ln.Addr().(*net.TCPAddr).Port),
		TransactionScanInterval: 100 * time.Millisecond}, n.meta, n.tier, testLogger(), nil)
	go succ.Serve(ln)
	defer func() {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		succ.Close(c)
	}()
	n.addr = ln.Addr().String()
	got := readAll(t, ctx, n, "prep", true, 4)
	if fmt.Sprint(got) != "[a b c d]" {
		t.Fatalf("read_committed after the successor took over saw %v, want [a b c d]", got)
	}
	waitFor(t, func() bool {
		cur, _, err := n.meta.GetTxn(ctx, "prep-1")
		return err == nil && cur.State == metadata.TxnCompleteCommit
	})
}

// TestTransactionProtocolStepByStep drives one transaction with raw
// requests and checks what each admin and group API shows at each step:
// pending transactional offsets are UNSTABLE_OFFSET_COMMIT to RequireStable
// readers and invisible to others until the commit; DescribeTransactions,
// ListTransactions and DescribeProducers show the open transaction; the
// verify-only AddPartitionsToTxn of KIP-890 confirms exactly the added
// partitions; a wrong producer id is refused; EndTxn is idempotent.
func TestTransactionProtocolStepByStep(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic("adm", 2)
	c := n.dial()
	const id, group = "adm-1", "adm-group"

	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.Version = 4
	ip.TransactionalID = kmsg.StringPtr(id)
	ip.TransactionTimeoutMillis = 60000
	ipr := roundTrip[*kmsg.InitProducerIDResponse](c, ip)
	if ipr.ErrorCode != 0 {
		t.Fatalf("InitProducerId: %v", kerr.ErrorForCode(ipr.ErrorCode))
	}
	pid, epoch := ipr.ProducerID, ipr.ProducerEpoch

	ap := kmsg.NewPtrAddPartitionsToTxnRequest()
	ap.Version = 3
	ap.TransactionalID, ap.ProducerID, ap.ProducerEpoch = id, pid, epoch
	ap.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "adm", Partitions: []int32{0}}}
	if r := roundTrip[*kmsg.AddPartitionsToTxnResponse](c, ap); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("AddPartitionsToTxn: %v", kerr.ErrorForCode(r.Topics[0].Partitions[0].ErrorCode))
	}
	ao := kmsg.NewPtrAddOffsetsToTxnRequest()
	ao.Version = 3
	ao.TransactionalID, ao.ProducerID, ao.ProducerEpoch, ao.Group = id, pid, epoch, group
	if r := roundTrip[*kmsg.AddOffsetsToTxnResponse](c, ao); r.ErrorCode != 0 {
		t.Fatalf("AddOffsetsToTxn: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	recs, err := kbatch.Build([]kbatch.Record{{Value: []byte("v"), Timestamp: time.Now().UnixMilli()}},
		kbatch.BuildOptions{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: 0, Transactional: true})
	if err != nil {
		t.Fatal(err)
	}
	pr := produceReq(9, -1, "adm", 0, recs)
	pr.TransactionID = kmsg.StringPtr(id)
	if r := roundTrip[*kmsg.ProduceResponse](c, pr); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("transactional produce: %v", kerr.ErrorForCode(r.Topics[0].Partitions[0].ErrorCode))
	}
	// The same batch to a partition never added is refused (KIP-890).
	pr = produceReq(9, -1, "adm", 1, recs)
	pr.TransactionID = kmsg.StringPtr(id)
	if r := roundTrip[*kmsg.ProduceResponse](c, pr); r.Topics[0].Partitions[0].ErrorCode != kerr.InvalidTxnState.Code {
		t.Fatalf("transactional produce to a partition not in the transaction: %v, want INVALID_TXN_STATE", kerr.ErrorForCode(r.Topics[0].Partitions[0].ErrorCode))
	}

	txnCommit := func(pid int64) int16 {
		tc := kmsg.NewPtrTxnOffsetCommitRequest()
		tc.Version = 3
		tc.TransactionalID, tc.Group, tc.ProducerID, tc.ProducerEpoch, tc.Generation = id, group, pid, epoch, -1
		tc.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "adm", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 5, LeaderEpoch: -1}}}}
		return roundTrip[*kmsg.TxnOffsetCommitResponse](c, tc).Topics[0].Partitions[0].ErrorCode
	}
	if code := txnCommit(pid + 1); code != kerr.InvalidProducerIDMapping.Code {
		t.Fatalf("TxnOffsetCommit with another producer id: %v, want INVALID_PRODUCER_ID_MAPPING", kerr.ErrorForCode(code))
	}
	if code := txnCommit(pid); code != 0 {
		t.Fatalf("TxnOffsetCommit: %v", kerr.ErrorForCode(code))
	}
	fetchOffset := func(stable bool) (int64, int16) {
		of := kmsg.NewPtrOffsetFetchRequest()
		of.Version = 7
		of.Group, of.RequireStable = group, stable
		of.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "adm", Partitions: []int32{0}}}
		r := roundTrip[*kmsg.OffsetFetchResponse](c, of)
		return r.Topics[0].Partitions[0].Offset, r.Topics[0].Partitions[0].ErrorCode
	}
	if _, code := fetchOffset(true); code != kerr.UnstableOffsetCommit.Code {
		t.Fatalf("OffsetFetch RequireStable during the transaction: %v, want UNSTABLE_OFFSET_COMMIT", kerr.ErrorForCode(code))
	}
	if off, code := fetchOffset(false); code != 0 || off != -1 {
		t.Fatalf("OffsetFetch during the transaction: offset %d, %v; want -1 (nothing committed yet)", off, kerr.ErrorForCode(code))
	}

	dt := kmsg.NewPtrDescribeTransactionsRequest()
	dt.TransactionalIDs = []string{id, "nobody"}
	dr := roundTrip[*kmsg.DescribeTransactionsResponse](c, dt)
	if s := dr.TransactionStates[0]; s.ErrorCode != 0 || s.State != "Ongoing" || s.ProducerID != pid || len(s.Topics) != 1 || fmt.Sprint(s.Topics[0].Partitions) != "[0]" {
		t.Fatalf("DescribeTransactions: %+v", s)
	}
	if s := dr.TransactionStates[1]; s.ErrorCode != kerr.TransactionalIDNotFound.Code {
		t.Fatalf("DescribeTransactions of an unknown id: %v", kerr.ErrorForCode(s.ErrorCode))
	}
	lt := kmsg.NewPtrListTransactionsRequest()
	lt.StateFilters = []string{"Ongoing"}
	if lr := roundTrip[*kmsg.ListTransactionsResponse](c, lt); len(lr.TransactionStates) != 1 || lr.TransactionStates[0].TransactionalID != id {
		t.Fatalf("ListTransactions Ongoing: %+v", lr.TransactionStates)
	}
	openStart := func() int64 {
		dp := kmsg.NewPtrDescribeProducersRequest()
		dp.Topics = []kmsg.DescribeProducersRequestTopic{{Topic: "adm", Partitions: []int32{0}}}
		r := roundTrip[*kmsg.DescribeProducersResponse](c, dp)
		for _, ap := range r.Topics[0].Partitions[0].ActiveProducers {
			if ap.ProducerID == pid {
				return ap.CurrentTxnStartOffset
			}
		}
		t.Fatalf("DescribeProducers does not list producer %d", pid)
		return 0
	}
	if s := openStart(); s != 0 {
		t.Fatalf("DescribeProducers: open transaction starts at %d, want 0", s)
	}
	verify := kmsg.NewPtrAddPartitionsToTxnRequest()
	verify.Version = 4
	verify.Transactions = []kmsg.AddPartitionsToTxnRequestTransaction{{TransactionalID: id, ProducerID: pid, ProducerEpoch: epoch, VerifyOnly: true,
		Topics: []kmsg.AddPartitionsToTxnRequestTransactionTopic{{Topic: "adm", Partitions: []int32{0, 1}}}}}
	vr := roundTrip[*kmsg.AddPartitionsToTxnResponse](c, verify)
	if ps := vr.Transactions[0].Topics[0].Partitions; ps[0].ErrorCode != 0 || ps[1].ErrorCode != kerr.InvalidTxnState.Code {
		t.Fatalf("verify-only AddPartitionsToTxn of [0 1]: %v, %v; want ok, INVALID_TXN_STATE", kerr.ErrorForCode(ps[0].ErrorCode), kerr.ErrorForCode(ps[1].ErrorCode))
	}

	end := func(commit bool) int16 {
		et := kmsg.NewPtrEndTxnRequest()
		et.Version = 3
		et.TransactionalID, et.ProducerID, et.ProducerEpoch, et.Commit = id, pid, epoch, commit
		return roundTrip[*kmsg.EndTxnResponse](c, et).ErrorCode
	}
	if code := end(true); code != 0 {
		t.Fatalf("EndTxn commit: %v", kerr.ErrorForCode(code))
	}
	if code := end(true); code != 0 {
		t.Fatalf("EndTxn commit again (a retry): %v", kerr.ErrorForCode(code))
	}
	if code := end(false); code != kerr.InvalidTxnState.Code {
		t.Fatalf("EndTxn abort after the commit: %v, want INVALID_TXN_STATE", kerr.ErrorForCode(code))
	}
	if off, code := fetchOffset(true); code != 0 || off != 5 {
		t.Fatalf("OffsetFetch RequireStable after the commit: offset %d, %v; want 5", off, kerr.ErrorForCode(code))
	}
	if s := openStart(); s != -1 {
		t.Fatalf("DescribeProducers after the commit: open transaction at %d, want none (-1)", s)
	}
	if s := roundTrip[*kmsg.DescribeTransactionsResponse](c, dt).TransactionStates[0]; s.State != "CompleteCommit" {
		t.Fatalf("DescribeTransactions after the commit: %s", s.State)
	}
}

// TestGroupOffsetsAfterATransactionEndsElsewhere: a group coordinator that
// loaded the group while a transaction (committed through another node)
// held offsets for it, serves the offsets that transaction's end applies
// in etcd, not its cached ones. And an end by a coordinator that lost the
// race (the transaction moved on) touches nothing.
func TestGroupOffsetsAfterATransactionEndsElsewhere(t *testing.T) {
	n := startNode(t, nil)
	n.createTopic("moved", 1)
	ctx := context.Background()
	c := n.dial()
	const group = "moved-group"
	tp := metadata.TP{Topic: "moved", Partition: 0}
	// What another node's coordinators did: a transaction with the group
	// in it, and its offsets pending.
	st, ok, err := n.meta.PutTxn(ctx, metadata.TxnState{TransactionalID: "elsewhere", ProducerID: 99, State: metadata.TxnOngoing, Groups: []string{group}, Seq: 1})
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if ok, err := n.meta.PutTxnOffsets(ctx, group, st, map[metadata.TP]metadata.CommittedOffset{tp: {Offset: 17, LeaderEpoch: -1}}); err != nil || !ok {
		t.Fatal(ok, err)
	}
	fetch := func() int64 {
		of := kmsg.NewPtrOffsetFetchRequest()
		of.Version = 6
		of.Group = group
		of.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "moved", Partitions: []int32{0}}}
		return roundTrip[*kmsg.OffsetFetchResponse](c, of).Topics[0].Partitions[0].Offset
	}
	if off := fetch(); off != -1 {
		t.Fatalf("offset while the transaction is open: %d, want -1", off)
	}
	prepared := st
	prepared.State = metadata.TxnPrepareCommit
	if prepared, ok, err = n.meta.PutTxn(ctx, prepared); err != nil || !ok {
		t.Fatal(ok, err)
	}
	// A coordinator holding the state from before the prepare lost the
	// race: its end must not apply anything.
	if err := n.meta.EndTxnOffsets(ctx, group, st, false); !errors.Is(err, metadata.ErrTxnMoved) {
		t.Fatalf("end by a stale coordinator: %v, want ErrTxnMoved", err)
	}
	if err := n.meta.EndTxnOffsets(ctx, group, prepared, true); err != nil {
		t.Fatal(err)
	}
	if off := fetch(); off != 17 {
		t.Fatalf("offset after the transaction committed elsewhere: %d, want 17 (the coordinator served its cache)", off)
	}
}
