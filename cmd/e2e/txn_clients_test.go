package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Transactions through three clients other than franz-go (txn_test.go and
// ingest/txn_test.go cover franz-go): kafkajs 2.2.4, IBM/sarama and
// librdkafka (Debian's python3-confluent-kafka). Each runs the same
// sequence with one transactional id, writing to one topic and committing
// offsets of an input topic's partition 0 for a group inside its
// transactions:
//
//  1. p1 writes commit-0..2 and offset 42, and commits;
//  2. p1 writes abort-0..2 and offset 99, and aborts;
//  3. p1 writes zombie1-0 and offset 66; p2 initialises the same id, which
//     fences p1 (and aborts its transaction); p1's commit must fail;
//  4. p2 writes zombie2-0; p3 initialises the id and fences p2; p2's next
//     produce (zombie2-late-0) and its commit must fail;
//  5. p3 writes successor-0..1 and offset 77, and commits.
//
// The client reports what it saw (txnReport); checkTxnRun checks it and
// reads the topic and the group again with franz-go.

// The group's committed offset of the input partition that each step's
// transaction sends, and the client's checkpoints with what they must read.
const (
	txnOffsetCommitted = 42 // step 1, committed
	txnOffsetAborted   = 99 // step 2, aborted
	txnOffsetZombie    = 66 // step 3, its transaction aborted by p2's init
	txnOffsetFinal     = 77 // step 5, committed
)

var wantTxnOffsets = map[string]int64{
	"afterCommit": txnOffsetCommitted,
	"beforeAbort": txnOffsetCommitted, // step 2's offset is pending, not committed
	"afterAbort":  txnOffsetCommitted,
	"afterFence":  txnOffsetCommitted, // p1's open transaction was aborted
	"final":       txnOffsetFinal,
}

var (
	// wantTxnCommitted is all a read_committed reader may see, in order.
	wantTxnCommitted = []string{"commit-0", "commit-1", "commit-2", "successor-0", "successor-1"}
	// wantTxnWritten is what the log holds for a read_uncommitted reader:
	// the aborted records are there (so hiding them is the broker's doing),
	// but the fenced producer's late record was refused.
	wantTxnWritten = []string{"commit-0", "commit-1", "commit-2", "abort-0", "abort-1", "abort-2",
		"zombie1-0", "zombie2-0", "successor-0", "successor-1"}
	// txnFenceOps are the zombie operations that must fail with a fencing
	// error.
	txnFenceOps = []string{"commitAfterFence", "produceAfterFence", "commitAfterFailedProduce"}
)

// txnScenario names what one client's run uses.
type txnScenario struct {
	Broker    string `json:"broker"`
	Topic     string `json:"topic"`     // the transactions write here (1 partition)
	InTopic   string `json:"inTopic"`   // their offsets are for partition 0 of this one
	Group     string `json:"group"`     // ... in this group
	ReadGroup string `json:"readGroup"` // the client's read_committed consumer's group
	TxnID     string `json:"txnId"`
	TimeoutMs int64  `json:"timeoutMs"`
}

// newTxnScenario names the topics, group and transactional id after name
// and fills the input topic with 100 plain records, so that the offsets
// the transactions commit point into it.
func newTxnScenario(t *testing.T, ctx context.Context, addr, name string) txnScenario {
	t.Helper()
	sc := txnScenario{
		Broker:    addr,
		Topic:     name + "-out",
		InTopic:   name + "-in",
		Group:     name + "-group",
		ReadGroup: name + "-reader",
		TxnID:     name + "-txn",
		TimeoutMs: 60_000,
	}
	cl := newClient(t, addr)
	ensureTopic(t, ctx, cl, sc.Topic)
	ensureTopic(t, ctx, cl, sc.InTopic)
	in := make([]*kgo.Record, 100)
	for i := range in {
		in[i] = &kgo.Record{Value: []byte(fmt.Sprintf("in-%d", i))}
	}
	produceAll(t, ctx, cl, sc.InTopic, in)
	return sc
}

// txnReport is what a client saw while running the sequence.
type txnReport struct {
	Client  string `json:"client"`
	Version string `json:"version"`
	// ReadCommitted is what the client's own read_committed consumer
	// read from the start of the topic up to successor-1, in order.
	ReadCommitted []string `json:"readCommitted"`
	// Offsets is the group's committed offset of the input partition at
	// each checkpoint (wantTxnOffsets), as the client's own admin API or
	// consumer reads it.
	Offsets map[string]int64 `json:"offsets"`
	// Fenced is how each zombie operation (txnFenceOps) ended.
	Fenced map[string]fenceResult `json:"fenced"`
}

// fenceResult is how one operation of a fenced producer ended.
type fenceResult struct {
	OK      bool   `json:"ok"`      // it succeeded: wrong
	Code    string `json:"code"`    // the error's Kafka name, as the client spells it
	Message string `json:"message"` // the client's description
}

// fencingCodes are the names clients give a fencing error: Kafka's
// PRODUCER_FENCED (KIP-588) and INVALID_PRODUCER_EPOCH (before it and for
// Produce), and librdkafka's local _FENCED, which it raises, fatal, when the
// broker answers either of them.
var fencingCodes = []string{"PRODUCER_FENCED", "INVALID_PRODUCER_EPOCH", "_FENCED"}

// checkTxnRun checks a client's report and reads the topic and the group
// again with franz-go.
func checkTxnRun(t *testing.T, ctx context.Context, sc txnScenario, rep txnReport) {
	t.Helper()
	t.Logf("%s %s: read_committed %v, offsets %v, fenced %+v", rep.Client, rep.Version, rep.ReadCommitted, rep.Offsets, rep.Fenced)
	if !slices.Equal(rep.ReadCommitted, wantTxnCommitted) {
		t.Errorf("%s read_committed consumer read %q, want %q (committed transactions only)", rep.Client, rep.ReadCommitted, wantTxnCommitted)
	}
	for _, cp := range []string{"afterCommit", "beforeAbort", "afterAbort", "afterFence", "final"} {
		got, ok := rep.Offsets[cp]
		switch {
		case !ok:
			t.Errorf("%s: no committed offset reported at checkpoint %s", rep.Client, cp)
		case got != wantTxnOffsets[cp]:
			t.Errorf("%s: group %s committed offset %d at checkpoint %s, want %d", rep.Client, sc.Group, got, cp, wantTxnOffsets[cp])
		}
	}
	for _, op := range txnFenceOps {
		r, ok := rep.Fenced[op]
		switch {
		case !ok:
			t.Errorf("%s: zombie operation %s not reported", rep.Client, op)
		case r.OK:
			t.Errorf("%s: fenced producer's %s succeeded, want a fencing error", rep.Client, op)
		case !slices.Contains(fencingCodes, r.Code):
			t.Errorf("%s: fenced producer's %s failed with %s (%s), want one of %v", rep.Client, op, r.Code, r.Message, fencingCodes)
		}
	}

	t.Run("franz-go-read-committed", func(t *testing.T) {
		got := txnValues(consumeN(t, ctx, sc.Broker, sc.Topic, len(wantTxnCommitted), kgo.FetchIsolationLevel(kgo.ReadCommitted())))
		if !slices.Equal(got, wantTxnCommitted) {
			t.Errorf("read_committed: %q, want %q", got, wantTxnCommitted)
		}
	})
	t.Run("franz-go-read-uncommitted", func(t *testing.T) {
		got := txnValues(consumeN(t, ctx, sc.Broker, sc.Topic, len(wantTxnWritten), kgo.FetchIsolationLevel(kgo.ReadUncommitted())))
		if !slices.Equal(got, wantTxnWritten) {
			t.Errorf("read_uncommitted: %q, want %q (aborted records written; the fenced producer's late record refused)", got, wantTxnWritten)
		}
	})
	t.Run("franz-go-offset-fetch", func(t *testing.T) {
		// RequireStable: no transaction of the group may still be open.
		if got := groupOffset(t, ctx, sc.Broker, sc.Group, sc.InTopic, true); got != txnOffsetFinal {
			t.Errorf("group %s committed offset of %s[0]: %d, want %d", sc.Group, sc.InTopic, got, txnOffsetFinal)
		}
	})
}

// txnValues returns the values of rs, in order.
func txnValues(rs []rec) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Value
	}
	return out
}

// groupOffset returns group's committed offset of topic's partition 0 (-1
// when none), through OffsetFetch v7+ with require_stable as asked.
func groupOffset(t *testing.T, ctx context.Context, addr, group, topic string, requireStable bool) int64 {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 7 // single group, require_stable
	req.Group = group
	req.RequireStable = requireStable
	req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: topic, Partitions: []int32{0}}}
	resp, err := req.RequestWith(ctx, rawClient(t, addr))
	if err != nil {
		t.Fatalf("OffsetFetch %s: %v", group, err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		t.Fatalf("OffsetFetch %s: %v", group, err)
	}
	for _, rt := range resp.Topics {
		for _, p := range rt.Partitions {
			if rt.Topic != topic || p.Partition != 0 {
				continue
			}
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				t.Fatalf("OffsetFetch %s %s[0]: %v", group, topic, err)
			}
			return p.Offset
		}
	}
	t.Fatalf("OffsetFetch %s: no %s[0] in the answer %+v", group, topic, resp.Topics)
	return 0
}

// TestKafkaJSTransactions runs the sequence with kafkajs 2.2.4
// (testdata/kafkajs/txn.js): producer.transaction(), send,
// transaction.sendOffsets (AddOffsetsToTxn + TxnOffsetCommit), commit and
// abort, admin.fetchOffsets for the group, and a kafkajs consumer with
// readUncommitted false. kafkajs speaks EndTxn and AddPartitionsToTxn v0-v1
// only, so its fencing error is INVALID_PRODUCER_EPOCH.
func TestKafkaJSTransactions(t *testing.T) {
	nodeBin := requireTool(t, "node")
	env := []string{"NODE_PATH=" + nodePath(t), "KAFKAJS_NO_PARTITIONER_WARNING=1"}
	addr := startBroker(t)
	ctx := testContext(t)
	sc := newTxnScenario(t, ctx, addr, "kafkajs-txn")
	cfg, _ := json.Marshal(sc)
	out, stderr := runCmd(t, ctx, nil, env, nodeBin, "testdata/kafkajs/txn.js", string(cfg))
	var rep txnReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("txn.js output is not JSON (%v):\n%s\nstderr:\n%s", err, tail(out), tail(stderr))
	}
	if rep.Version != "2.2.4" {
		t.Fatalf("kafkajs version %q, want 2.2.4: %s", rep.Version, setupHint)
	}
	checkTxnRun(t, ctx, sc, rep)
	if t.Failed() {
		t.Logf("txn.js stderr:\n%s", tail(stderr))
	}
}

// TestLibrdkafkaTransactions runs the sequence with librdkafka through
// Debian's python3-confluent-kafka (testdata/librdkafka/txn.py):
// init_transactions, begin_transaction, produce, send_offsets_to_transaction,
// commit_transaction and abort_transaction, Consumer.committed for the
// group, and a Consumer with isolation.level=read_committed.
func TestLibrdkafkaTransactions(t *testing.T) {
	py := requirePythonModule(t, "confluent_kafka", "python3-confluent-kafka")
	addr := startBroker(t)
	ctx := testContext(t)
	sc := newTxnScenario(t, ctx, addr, "librdkafka-txn")
	cfg, _ := json.Marshal(sc)
	out, stderr := runCmd(t, ctx, nil, nil, py, "testdata/librdkafka/txn.py", string(cfg))
	var rep txnReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("txn.py output is not JSON (%v):\n%s\nstderr:\n%s", err, tail(out), tail(stderr))
	}
	checkTxnRun(t, ctx, sc, rep)
	if t.Failed() {
		t.Logf("txn.py stderr:\n%s", tail(stderr))
	}
}

// TestSaramaTransactions runs the sequence with sarama's transactional
// SyncProducer (Idempotent, Transaction.ID, MaxOpenRequests 1, acks all):
// BeginTxn, SendMessages, AddMessageToTxn (step 1, with a message its
// consumer read from the input topic) and AddOffsetsToTxn, CommitTxn and
// AbortTxn, and a read_committed PartitionConsumer. It runs at
// sarama.V2_5_0_0, whose EndTxn v1 predates PRODUCER_FENCED, and at
// sarama's default version (EndTxn and AddPartitionsToTxn v3, which know
// it).
func TestSaramaTransactions(t *testing.T) {
	addr := startBroker(t)
	for _, v := range []sarama.KafkaVersion{sarama.V2_5_0_0, sarama.DefaultVersion} {
		t.Run(v.String(), func(t *testing.T) {
			ctx := testContext(t)
			sc := newTxnScenario(t, ctx, addr, "sarama-txn-"+strings.ReplaceAll(v.String(), ".", "-"))
			rep := saramaTxnRun(t, ctx, sc, v)
			checkTxnRun(t, ctx, sc, rep)
		})
	}
}

// saramaTxnConfig is a transactional producer's and read_committed
// consumer's config at version v.
func saramaTxnConfig(sc txnScenario, v sarama.KafkaVersion) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = v
	cfg.ClientID = "strata-e2e-txn"
	cfg.Producer.Idempotent = true
	cfg.Producer.Transaction.ID = sc.TxnID
	cfg.Producer.Transaction.Timeout = 30 * time.Second
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Net.MaxOpenRequests = 1
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	cfg.Consumer.Return.Errors = true
	return cfg
}

// saramaTxnRun runs the sequence with sarama and reports it as the scripts
// do.
func saramaTxnRun(t *testing.T, ctx context.Context, sc txnScenario, v sarama.KafkaVersion) txnReport {
	t.Helper()
	cfg := saramaTxnConfig(sc, v)
	rep := txnReport{Client: "sarama", Version: v.String(), Offsets: map[string]int64{}, Fenced: map[string]fenceResult{}}

	newProducer := func(name string) sarama.SyncProducer {
		// A transactional producer sends InitProducerId when it is made.
		p, err := sarama.NewSyncProducer([]string{sc.Broker}, cfg)
		if err != nil {
			t.Fatalf("sarama %s: new transactional producer: %v", name, err)
		}
		// Closing a sarama producer twice panics: once, when the test ends.
		t.Cleanup(func() { p.Close() })
		return p
	}
	send := func(p sarama.SyncProducer, prefix string, n int) error {
		msgs := make([]*sarama.ProducerMessage, n)
		for i := range msgs {
			msgs[i] = &sarama.ProducerMessage{
				Topic:     sc.Topic,
				Partition: 0,
				Key:       sarama.StringEncoder(fmt.Sprintf("%s-key-%d", prefix, i)),
				Value:     sarama.StringEncoder(fmt.Sprintf("%s-%d", prefix, i)),
			}
		}
		return p.SendMessages(msgs)
	}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("sarama %s: %v", what, err)
		}
	}
	offsets := func(off int64) map[string][]*sarama.PartitionOffsetMetadata {
		return map[string][]*sarama.PartitionOffsetMetadata{sc.InTopic: {{Partition: 0, Offset: off}}}
	}
	checkpoint := func(name string) { rep.Offsets[name] = groupOffset(t, ctx, sc.Broker, sc.Group, sc.InTopic, false) }
	fence := func(op string, err error) {
		r := fenceResult{OK: err == nil}
		if err != nil {
			r.Message = err.Error()
			var pe sarama.ProducerErrors
			if errors.As(err, &pe) && len(pe) > 0 {
				err = pe[0].Err
				r.Message += ": " + err.Error()
			}
			switch {
			case errors.Is(err, sarama.ErrProducerFenced):
				r.Code = "PRODUCER_FENCED"
			case errors.Is(err, sarama.ErrInvalidProducerEpoch):
				r.Code = "INVALID_PRODUCER_EPOCH"
			default:
				r.Code = fmt.Sprintf("%T", err)
				var ke sarama.KError
				if errors.As(err, &ke) {
					r.Code = fmt.Sprintf("KError %d", int16(ke))
				}
			}
		}
		rep.Fenced[op] = r
	}

	// The message step 1 "processed": read from the input topic by a
	// read_committed consumer, its offset + 1 committed by AddMessageToTxn.
	cons, err := sarama.NewConsumer([]string{sc.Broker}, cfg)
	must("consumer", err)
	defer cons.Close()
	pc, err := cons.ConsumePartition(sc.InTopic, 0, txnOffsetCommitted-1)
	must("consume the input", err)
	var inMsg *sarama.ConsumerMessage
	select {
	case inMsg = <-pc.Messages():
	case err := <-pc.Errors():
		t.Fatalf("sarama consume the input: %v", err)
	case <-ctx.Done():
		t.Fatalf("sarama consume the input: no message before the deadline")
	}
	must("close the input consumer", pc.Close())

	p1 := newProducer("p1")
	must("p1 begin", p1.BeginTxn())
	must("p1 send commit-*", send(p1, "commit", 3))
	must("p1 AddMessageToTxn", p1.AddMessageToTxn(inMsg, sc.Group, nil))
	must("p1 commit", p1.CommitTxn())
	checkpoint("afterCommit")

	must("p1 begin", p1.BeginTxn())
	must("p1 send abort-*", send(p1, "abort", 3))
	must("p1 AddOffsetsToTxn", p1.AddOffsetsToTxn(offsets(txnOffsetAborted), sc.Group))
	checkpoint("beforeAbort")
	must("p1 abort", p1.AbortTxn())
	checkpoint("afterAbort")

	// p1 becomes a zombie: p2 initialises the same transactional id while
	// p1's transaction is open.
	must("p1 begin", p1.BeginTxn())
	must("p1 send zombie1-*", send(p1, "zombie1", 1))
	must("p1 AddOffsetsToTxn", p1.AddOffsetsToTxn(offsets(txnOffsetZombie), sc.Group))
	p2 := newProducer("p2")
	checkpoint("afterFence")
	fence("commitAfterFence", p1.CommitTxn())

	// p2 becomes a zombie in turn, with a send after p3's init.
	must("p2 begin", p2.BeginTxn())
	must("p2 send zombie2-*", send(p2, "zombie2", 1))
	p3 := newProducer("p3")
	fence("produceAfterFence", send(p2, "zombie2-late", 1))
	fence("commitAfterFailedProduce", p2.CommitTxn())

	must("p3 begin", p3.BeginTxn())
	must("p3 send successor-*", send(p3, "successor", 2))
	must("p3 AddOffsetsToTxn", p3.AddOffsetsToTxn(offsets(txnOffsetFinal), sc.Group))
	must("p3 commit", p3.CommitTxn())
	checkpoint("final")

	// sarama's read_committed consumer, from the start up to successor-1.
	pc, err = cons.ConsumePartition(sc.Topic, 0, sarama.OffsetOldest)
	must("consume the output", err)
	defer pc.Close()
	for !slices.Contains(rep.ReadCommitted, "successor-1") {
		select {
		case m := <-pc.Messages():
			rep.ReadCommitted = append(rep.ReadCommitted, string(m.Value))
		case err := <-pc.Errors():
			t.Fatalf("sarama read_committed consumer: %v", err)
		case <-ctx.Done():
			t.Fatalf("sarama read_committed consumer: no successor-1 before the deadline; got %q", rep.ReadCommitted)
		}
	}
	return rep
}
