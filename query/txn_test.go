package query_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestArrowReadsCommittedOnly: the HTTP Arrow stream shows a topic as a
// read_committed consumer sees it: a committed transaction's records, not
// an aborted one's, nothing of a transaction still open (nor anything after
// it), and never a transaction marker.
func TestArrowReadsCommittedOnly(t *testing.T) {
	n := startNode(t)
	ctx, cancel := context.WithTimeout(testContext(t), time.Minute)
	defer cancel()
	tx := func(id string) *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(n.KafkaAddr()), kgo.TransactionalID(id), kgo.DefaultProduceTopic("tx"),
			kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.AllowAutoTopicCreation())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	run := func(cl *kgo.Client, commit bool, values ...string) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, v := range values {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	a, b := tx("arrow-a"), tx("arrow-b")
	run(a, true, "c1", "c2")
	run(a, false, "x1", "x2")
	run(a, true, "c3")
	values := func() string {
		rows, _ := fetchHTTP(t, n.HTTPAddr(), "tx", url.Values{"partition": {"0"}})
		var vs []string
		for _, r := range rows {
			if r.Value != nil {
				vs = append(vs, *r.Value)
			}
		}
		return fmt.Sprint(vs)
	}
	if got := values(); got != "[c1 c2 c3]" {
		t.Fatalf("Arrow stream after commit, abort, commit: %s, want [c1 c2 c3]", got)
	}
	// An open transaction holds back everything from its first record on,
	// even records committed after it by another producer.
	if err := b.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := b.ProduceSync(ctx, &kgo.Record{Value: []byte("open")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	run(a, true, "c4")
	time.Sleep(100 * time.Millisecond) // a flush or two
	if got := values(); got != "[c1 c2 c3]" {
		t.Fatalf("Arrow stream with a transaction open: %s, want [c1 c2 c3]", got)
	}
	if err := b.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if got := values(); got != "[c1 c2 c3 open c4]" {
		t.Fatalf("Arrow stream after the open transaction committed: %s, want [c1 c2 c3 open c4]", got)
	}
}
