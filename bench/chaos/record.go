package chaos

import (
	"sort"
	"sync"
	"time"
)

// tp is a topic partition.
type tp struct {
	Topic     string
	Partition int32
}

// tpo is one offset of a topic partition.
type tpo struct {
	tp
	Offset int64
}

// sighting is one value seen at an offset: by whom and when (since the run
// started).
type sighting struct {
	Value string
	Who   string
	At    time.Duration
}

// Conflict is an offset that was seen holding two different values.
type Conflict struct {
	At            tpo
	First, Second sighting
}

// Ack is one acknowledged record.
type Ack struct {
	At    tpo
	Value string
	Time  time.Duration
}

// readRec is one record as a reader received it.
type readRec struct {
	Offset int64
	Value  string
	Time   time.Duration
}

// readerLog is everything one reader received, per partition, in order.
type readerLog struct {
	name  string
	group bool // a group member: it may legitimately re-read and jump (rebalances)

	mu       sync.Mutex
	parts    map[tp][]readRec
	dataLoss []string       // kgo.ErrDataLoss reports
	errs     map[string]int // other fetch errors, by text
}

func (l *readerLog) add(t tp, r readRec) {
	l.mu.Lock()
	l.parts[t] = append(l.parts[t], r)
	l.mu.Unlock()
}

func (l *readerLog) fetchErr(s string) {
	l.mu.Lock()
	l.errs[s]++
	l.mu.Unlock()
}

// deleteReq is one DeleteRecords request the schedule made.
type deleteReq struct {
	Partition int32
	Offset    int64
	Time      time.Duration // when it was sent
	OK        bool          // answered without error
	Low       int64         // the low watermark it answered
}

// commitSeen is the last committed offset seen for a partition: which node
// answered it, and when.
type commitSeen struct {
	off  int64
	node int32
	at   time.Duration
}

// commitRegression is a committed group offset that moved backwards: From
// (answered by FromNode at FromTime) then To (by ToNode at Time).
type commitRegression struct {
	At               tp
	From, To         int64
	FromNode, ToNode int32
	FromTime, Time   time.Duration
}

// Recorder keeps everything the load saw, for the final checks. All its
// methods are safe for concurrent use.
type Recorder struct {
	t0 time.Time

	mu        sync.Mutex
	seen      map[tpo]sighting
	conflicts []Conflict

	// acks=all producers: acknowledged records by value, their times per
	// partition, values that failed for good, failure texts.
	acks      map[string]Ack
	ackTimes  map[int32][]time.Duration
	failed    map[string]bool
	failErrs  map[string]int
	attempted int64
	unsent    int64          // refused by the client before sending (partition unknown to it yet)
	probes    map[string]Ack // final probe records, by value
	// acks=1 producer.
	acks1      map[string]Ack
	failErrs1  map[string]int
	attempted1 int64

	readers []*readerLog

	deletes []deleteReq

	commits      map[tp]commitSeen
	commitSeen   int64 // commits observed (an offset that moved forward)
	regressions  []commitRegression
	commitPolls  int64
	commitErrors int64
}

// NewRecorder starts the run's clock at t0.
func NewRecorder(t0 time.Time) *Recorder {
	return &Recorder{
		t0:        t0,
		seen:      map[tpo]sighting{},
		acks:      map[string]Ack{},
		ackTimes:  map[int32][]time.Duration{},
		failed:    map[string]bool{},
		failErrs:  map[string]int{},
		acks1:     map[string]Ack{},
		probes:    map[string]Ack{},
		failErrs1: map[string]int{},
		commits:   map[tp]commitSeen{},
	}
}

// since is the time since the run started.
func (r *Recorder) since() time.Duration { return time.Since(r.t0) }

// observeLocked records that who saw value at o; a different value seen
// there before is a conflict.
func (r *Recorder) observeLocked(o tpo, s sighting) {
	prev, ok := r.seen[o]
	if !ok {
		r.seen[o] = s
		return
	}
	if prev.Value != s.Value {
		r.conflicts = append(r.conflicts, Conflict{At: o, First: prev, Second: s})
	}
}

// ackAll records an acks=all acknowledgement.
func (r *Recorder) ackAll(o tpo, value, who string) {
	now := r.since()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.acks[value] = Ack{At: o, Value: value, Time: now}
	r.ackTimes[o.Partition] = append(r.ackTimes[o.Partition], now)
	r.observeLocked(o, sighting{Value: value, Who: who + " ack", At: now})
}

// failAll records an acks=all record that failed for good.
func (r *Recorder) failAll(value string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed[value] = true
	r.failErrs[err.Error()]++
}

// ackOne records an acks=1 acknowledgement. It is not an observation: an
// acks=1 record may be lost and its offset reused.
func (r *Recorder) ackOne(o tpo, value string) {
	now := r.since()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.acks1[value] = Ack{At: o, Value: value, Time: now}
}

func (r *Recorder) failOne(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failErrs1[err.Error()]++
}

func (r *Recorder) attemptedAdd(acksAll bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if acksAll {
		r.attempted++
	} else {
		r.attempted1++
	}
}

// newReader registers a reader's log.
func (r *Recorder) newReader(name string, group bool) *readerLog {
	l := &readerLog{name: name, group: group, parts: map[tp][]readRec{}, errs: map[string]int{}}
	r.mu.Lock()
	r.readers = append(r.readers, l)
	r.mu.Unlock()
	return l
}

// read records that reader l received value at o.
func (r *Recorder) read(l *readerLog, o tpo, value string) {
	now := r.since()
	l.add(o.tp, readRec{Offset: o.Offset, Value: value, Time: now})
	r.mu.Lock()
	r.observeLocked(o, sighting{Value: value, Who: l.name, At: now})
	r.mu.Unlock()
}

// deleteSent records a DeleteRecords request before it is sent and returns
// its index for deleteDone.
func (r *Recorder) deleteSent(p int32, off int64) int {
	now := r.since()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deletes = append(r.deletes, deleteReq{Partition: p, Offset: off, Time: now, Low: -1})
	return len(r.deletes) - 1
}

func (r *Recorder) deleteDone(i int, low int64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deletes[i].OK, r.deletes[i].Low = ok, low
}

// maxDelete is the highest DeleteRecords offset for partition p sent before
// t (okOnly: answered without error).
func (r *Recorder) maxDelete(p int32, t time.Duration, okOnly bool) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := int64(0)
	for _, d := range r.deletes {
		if d.Partition == p && d.Time <= t && (d.OK || !okOnly) && d.Offset > m {
			m = d.Offset
		}
	}
	return m
}

// committed records one poll of the group's committed offsets.
func (r *Recorder) committed(offs map[string]map[int32]int64, node int32, err error) {
	now := r.since()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.commitPolls++
	if err != nil {
		r.commitErrors++
		return
	}
	for topic, ps := range offs {
		for p, off := range ps {
			k := tp{topic, p}
			prev, ok := r.commits[k]
			switch {
			case !ok || off > prev.off:
				r.commits[k] = commitSeen{off, node, now}
				r.commitSeen++
			case off < prev.off:
				r.regressions = append(r.regressions, commitRegression{At: k, From: prev.off, To: off, Time: now, FromNode: prev.node, ToNode: node, FromTime: prev.at})
				r.commits[k] = commitSeen{off, node, now} // judge later commits against this one too
			}
		}
	}
}

// ackTimesOf returns partition p's acks=all acknowledgement times, sorted.
func (r *Recorder) ackTimesOf(p int32) []time.Duration {
	r.mu.Lock()
	ts := append([]time.Duration(nil), r.ackTimes[p]...)
	r.mu.Unlock()
	sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	return ts
}

// ackProbe records a probe record's acknowledgement: it must be read back
// like any acks=all record, but it is not part of the load's timing.
func (r *Recorder) ackProbe(o tpo, value string) {
	now := r.since()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.probes[value] = Ack{At: o, Value: value, Time: now}
	r.observeLocked(o, sighting{Value: value, Who: "probe ack", At: now})
}

// notSent records a record the client refused before sending it.
func (r *Recorder) notSent() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unsent++
}
