package chaos

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The transactional workload: producers with their own transactional ids
// write transactions of 1-10 records over random partitions of one topic,
// committing three in four and aborting the rest, while a read_committed
// reader follows the topic. At the end a second read_committed reader reads
// it all, and every transaction is checked:
//   - an aborted one was never read;
//   - a committed one was read whole, each record once;
//   - one whose commit answer was lost (unknown outcome) was read whole or
//     not at all;
//   - no record was read before its transaction's commit began (reading
//     past the last stable offset would show an open transaction's
//     records).

// txnOutcome is what the producer knows of one transaction.
type txnOutcome int

const (
	txnAborted txnOutcome = iota
	txnCommitted
	txnUnknown // the commit's answer was lost
)

// txnRecord is one transaction the producers ran.
type txnRecord struct {
	size        int
	outcome     txnOutcome
	commitStart time.Time // zero when no commit was asked for
}

// TxnLoad runs the transactional workload.
type TxnLoad struct {
	seeds []string
	log   io.Writer
	topic string
	parts int32

	prodCtx, readCtx   context.Context
	stopProd, stopRead context.CancelFunc
	prodWG, readWG     sync.WaitGroup

	mu    sync.Mutex
	txns  map[string]*txnRecord // "<producer>-<seq>"
	seen  map[string]time.Time  // value → when the live reader first read it
	dups  []string              // values the live reader read at two offsets
	at    map[string]string     // value → "partition/offset" where read
	errs  map[string]int        // producer errors, by text
	reads int
}

// StartTxnLoad creates topic and starts producers transactional producers
// and the live read_committed reader.
func StartTxnLoad(ctx context.Context, seeds []string, log io.Writer, admin *kgo.Client, topic string, parts int32, producers int, configs map[string]string) (*TxnLoad, error) {
	if err := retry(ctx, 30*time.Second, func(ctx context.Context) error { return createTopic(ctx, admin, topic, parts, configs) }); err != nil {
		return nil, err
	}
	l := &TxnLoad{seeds: seeds, log: log, topic: topic, parts: parts,
		txns: map[string]*txnRecord{}, seen: map[string]time.Time{}, at: map[string]string{}, errs: map[string]int{}}
	l.prodCtx, l.stopProd = context.WithCancel(context.Background())
	l.readCtx, l.stopRead = context.WithCancel(context.Background())
	rd, err := l.reader("txn-reader")
	if err != nil {
		return nil, err
	}
	l.readWG.Add(1)
	go func() {
		defer l.readWG.Done()
		defer rd.Close()
		for l.readCtx.Err() == nil {
			fs := rd.PollFetches(l.readCtx)
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) { l.read(string(r.Value), r.Partition, r.Offset, now) })
		}
	}()
	for i := range producers {
		l.prodWG.Add(1)
		go func() {
			defer l.prodWG.Done()
			l.produce(fmt.Sprintf("txn%d", i), rand.New(rand.NewPCG(uint64(i), 7)))
		}()
	}
	return l, nil
}

func (l *TxnLoad) reader(name string) (*kgo.Client, error) {
	return kgo.NewClient(clientOpts(l.seeds, l.log, name,
		kgo.ConsumeTopics(l.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(500*time.Millisecond),
	)...)
}

// read records one record the live reader got.
func (l *TxnLoad) read(value string, part int32, off int64, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reads++
	where := fmt.Sprintf("%d/%d", part, off)
	if prev, ok := l.at[value]; ok {
		if prev != where {
			l.dups = append(l.dups, fmt.Sprintf("%s at %s and %s", value, prev, where))
		}
		return // a reader that rewound after a fault reads it again
	}
	l.at[value] = where
	l.seen[value] = now
}

func (l *TxnLoad) noteErr(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	msg := err.Error()
	if len(msg) > 120 {
		msg = msg[:120]
	}
	l.errs[msg]++
}

// produce runs one transactional producer until StopProducing. A client
// whose transaction failed in a way it cannot recover from is replaced by
// a new one with the same id (whose InitProducerId fences the old one).
func (l *TxnLoad) produce(name string, rng *rand.Rand) {
	newClient := func() (*kgo.Client, error) {
		return kgo.NewClient(clientOpts(l.seeds, l.log, name,
			kgo.TransactionalID("chaos-"+name),
			kgo.TransactionTimeout(30*time.Second),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.ProducerLinger(2*time.Millisecond),
		)...)
	}
	cl, err := newClient()
	if err != nil {
		l.noteErr(err)
		return
	}
	defer func() { cl.Close() }()
	ctx := l.prodCtx
	for seq := 0; ctx.Err() == nil; seq++ {
		key := fmt.Sprintf("%s-%d", name, seq)
		size := 1 + rng.IntN(10)
		abort := rng.IntN(4) == 0
		rec := &txnRecord{size: size, outcome: txnAborted}
		if err := cl.BeginTransaction(); err != nil {
			l.noteErr(err)
			cl.Close()
			if cl, err = newClient(); err != nil {
				l.noteErr(err)
				return
			}
			continue
		}
		l.mu.Lock()
		l.txns[key] = rec
		l.mu.Unlock()
		var failed atomic.Bool
		for j := range size {
			r := &kgo.Record{Topic: l.topic, Partition: rng.Int32N(l.parts), Key: []byte(key),
				Value: []byte(key + "-" + strconv.Itoa(j) + "-of-" + strconv.Itoa(size))}
			cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
				if err != nil {
					l.noteErr(err)
					failed.Store(true)
				}
			})
		}
		if err := cl.Flush(ctx); err != nil {
			failed.Store(true)
		}
		end := kgo.TryAbort
		if !abort && !failed.Load() {
			end = kgo.TryCommit
			l.mu.Lock()
			rec.commitStart = time.Now()
			rec.outcome = txnUnknown
			l.mu.Unlock()
		}
		// The end must not be cut short by StopProducing: a commit whose
		// answer is lost stays unknown, which the check allows, but the
		// workload would then end on one.
		endCtx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		err := cl.EndTransaction(endCtx, end)
		cancel()
		if err == nil && end == kgo.TryCommit {
			l.mu.Lock()
			rec.outcome = txnCommitted
			l.mu.Unlock()
		}
		if err != nil {
			l.noteErr(fmt.Errorf("end transaction: %w", err))
			cl.Close()
			if cl, err = newClient(); err != nil {
				l.noteErr(err)
				return
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(20+rng.IntN(60)) * time.Millisecond):
		}
	}
}

// StopProducing stops the producers, waiting up to limit for the
// transactions under way to end.
func (l *TxnLoad) StopProducing(limit time.Duration) {
	l.stopProd()
	done := make(chan struct{})
	go func() { l.prodWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
	}
}

// StopReading stops the live reader.
func (l *TxnLoad) StopReading() {
	l.stopRead()
	l.readWG.Wait()
}

// TxnResult is the transactional workload's verdict.
type TxnResult struct {
	Committed, Aborted, Unknown int // transactions, by what the producer knows
	UnknownVisible              int // unknown outcome, read whole (committed)
	Records                     int // records the final read got
	AbortedRead                 int // aborted transactions with a record read
	CommittedMissing            int // committed transactions not read whole
	Partial                     int // transactions read in part
	Duplicates                  int // records read at two offsets
	Early                       int // records read before their commit began
	Vanished                    int // records the live reader read and the final read did not
	Errors                      map[string]int
	Evidence                    []string
}

// Check reads the topic again from the start at read_committed until it
// has been quiet for quiet (at most limit), and checks every transaction.
func (l *TxnLoad) Check(ctx context.Context, quiet, limit time.Duration) (TxnResult, error) {
	var res TxnResult
	rd, err := l.reader("txn-final")
	if err != nil {
		return res, err
	}
	defer rd.Close()
	final := map[string]string{} // value → partition/offset
	var ev evidence
	deadline := time.Now().Add(limit)
	last := time.Now()
	for time.Since(last) < quiet && time.Now().Before(deadline) && ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := rd.PollFetches(pctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			last = time.Now()
			v, where := string(r.Value), fmt.Sprintf("%d/%d", r.Partition, r.Offset)
			if prev, ok := final[v]; ok && prev != where {
				res.Duplicates++
				ev.add("duplicate", "%s at %s and %s", v, prev, where)
			}
			final[v] = where
		})
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	res = evalTxns(l.txns, l.seen, l.at, final, l.dups, res.Duplicates, ev)
	res.Errors = l.errs
	return res, nil
}

// evalTxns checks every transaction against what the live reader saw
// (seen: first read time, at: where) and what the final read got (final:
// value → where); dups are the live reader's records read at two offsets.
func evalTxns(txns map[string]*txnRecord, seen map[string]time.Time, at, final map[string]string, dups []string, finalDups int, ev evidence) TxnResult {
	res := TxnResult{Records: len(final), Duplicates: finalDups}
	for _, d := range dups {
		res.Duplicates++
		ev.add("duplicate", "live reader: %s", d)
	}
	got := map[string]int{} // transaction → distinct records read
	for v := range final {
		got[txnOf(v)]++
	}
	for v := range seen {
		if _, ok := final[v]; !ok {
			// The live reader saw what the final read did not.
			res.Vanished++
			ev.add("vanished", "%s read live at %s, not by the final read", v, at[v])
		}
	}
	keys := make([]string, 0, len(txns))
	for k := range txns {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t := txns[k]
		n := got[k]
		switch t.outcome {
		case txnAborted:
			res.Aborted++
			if n > 0 {
				res.AbortedRead++
				ev.add("aborted read", "transaction %s was aborted, %d of its %d records were read", k, n, t.size)
			}
		case txnCommitted:
			res.Committed++
			if n != t.size {
				res.CommittedMissing++
				ev.add("committed missing", "transaction %s was committed, %d of its %d records were read", k, n, t.size)
			}
		case txnUnknown:
			res.Unknown++
			if n == t.size {
				res.UnknownVisible++
			} else if n > 0 {
				res.Partial++
				ev.add("partly visible", "transaction %s (commit answer lost): %d of its %d records read", k, n, t.size)
			}
		}
		if t.outcome != txnAborted {
			for j := range t.size {
				v := k + "-" + strconv.Itoa(j) + "-of-" + strconv.Itoa(t.size)
				if at, ok := seen[v]; ok && at.Before(t.commitStart) {
					res.Early++
					ev.add("read past the LSO", "%s read %s before its commit began", v, t.commitStart.Sub(at))
				}
			}
		}
	}
	res.Evidence = ev.lines
	return res
}

// txnOf is the transaction a record value belongs to.
func txnOf(v string) string {
	i := strings.LastIndex(v, "-of-")
	if i < 0 {
		return v
	}
	j := strings.LastIndexByte(v[:i], '-')
	if j < 0 {
		return v
	}
	return v[:j]
}

// Violations is how many checks failed.
func (r TxnResult) Violations() int {
	return r.AbortedRead + r.CommittedMissing + r.Partial + r.Duplicates + r.Early + r.Vanished
}
