package chaos

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The share-group workload (KIP-932): an idempotent producer writes
// numbered records to a topic while share consumers of one group take
// them. A consumer rejects records whose number is 7 mod 25, releases
// records whose number is 3 mod 10 the first time it gets them, and
// accepts everything else. After each poll it flushes its
// acknowledgements; when every acknowledgement of that flush succeeded
// they are confirmed (the broker stored them).
//
// At the end it checks what a queue must never do, faults included:
//   - a record delivered again after its acceptance or rejection was
//     confirmed;
//   - an acknowledged produced record that is done in the group's stored
//     state (below its start offset, ReadShareGroupState) although no
//     consumer accepted or rejected it, or that is not done at all (lost).
// An accept whose confirmation a fault cut off may still have been stored:
// such a record is not delivered again, and counts as accepted when the
// stored state shows it done. Records delivered twice while no
// acknowledgement was confirmed are allowed (at least once) and counted.

// shareNum says what the consumers do with record n.
func shareReject(n int) bool       { return n%25 == 7 }
func shareReleaseFirst(n int) bool { return n%10 == 3 }

// ShareLoad runs the share-group workload.
type ShareLoad struct {
	seeds []string
	log   io.Writer
	topic string
	group string
	admin *kgo.Client

	prodCtx, readCtx   context.Context
	stopProd, stopRead context.CancelFunc
	prodWG, readWG     sync.WaitGroup

	produced atomic.Int64 // records acknowledged to the producer: 0..produced-1
	mu       sync.Mutex
	acked    map[int]bool // produced records the producer got an ack for
	state    map[int]*shareRec
	errs     map[string]int
	ev       evidence
	stats    ShareResult
}

type shareRec struct {
	deliveries int
	partition  int32
	offset     int64
	accepted   bool // confirmed accepted
	rejected   bool // confirmed rejected
	released   bool // released once (confirmed or not)
	tried      bool // an accept or reject was sent, maybe not confirmed
}

// StartShareLoad creates the topic, sets the group to start at the earliest
// offset with a short lock, and starts the producer and consumers.
func StartShareLoad(ctx context.Context, seeds []string, log io.Writer, admin *kgo.Client, topic, group string, parts int32, consumers int, configs map[string]string) (*ShareLoad, error) {
	if err := retry(ctx, 30*time.Second, func(ctx context.Context) error { return createTopic(ctx, admin, topic, parts, configs) }); err != nil {
		return nil, err
	}
	if err := retry(ctx, 30*time.Second, func(ctx context.Context) error {
		return setGroupConfig(ctx, admin, group, map[string]string{
			"share.auto.offset.reset":       "earliest",
			"share.record.lock.duration.ms": "5000",
			"share.heartbeat.interval.ms":   "1000",
		})
	}); err != nil {
		return nil, err
	}
	l := &ShareLoad{seeds: seeds, log: log, topic: topic, group: group, admin: admin,
		acked: map[int]bool{}, state: map[int]*shareRec{}, errs: map[string]int{}}
	l.prodCtx, l.stopProd = context.WithCancel(context.Background())
	l.readCtx, l.stopRead = context.WithCancel(context.Background())
	for i := range consumers {
		// failed counts acknowledgements the broker did not confirm
		// (per partition, from the client's ack callback).
		failed := new(atomic.Int64)
		cl, err := kgo.NewClient(clientOpts(seeds, log, fmt.Sprintf("share%d", i),
			kgo.ConsumeTopics(topic), kgo.ShareGroup(group), kgo.FetchMaxWait(500*time.Millisecond),
			kgo.ShareMaxRecords(50),
			kgo.ShareAckCallback(func(_ *kgo.Client, rs kgo.ShareAckResults) {
				if !rs.Ok() {
					failed.Add(1)
				}
			}))...)
		if err != nil {
			return nil, err
		}
		l.readWG.Add(1)
		go func() {
			defer l.readWG.Done()
			defer cl.Close()
			l.consume(cl, failed)
		}()
	}
	l.prodWG.Add(1)
	go func() {
		defer l.prodWG.Done()
		l.produce()
	}()
	return l, nil
}

// setGroupConfig sets configs of a group (IncrementalAlterConfigs, GROUP).
func setGroupConfig(ctx context.Context, cl *kgo.Client, group string, kv map[string]string) error {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
	for k, v := range kv {
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		rr.Configs = append(rr.Configs, c)
	}
	req.Resources = append(req.Resources, rr)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	if code := resp.Resources[0].ErrorCode; code != 0 {
		return fmt.Errorf("group config: error %d", code)
	}
	return nil
}

// produce writes numbered records, 20 per second in batches of 5, bounded.
func (l *ShareLoad) produce() {
	cl, err := kgo.NewClient(clientOpts(l.seeds, l.log, "share-producer",
		kgo.DefaultProduceTopic(l.topic), kgo.RequiredAcks(kgo.AllISRAcks()))...)
	if err != nil {
		l.fail(err.Error())
		return
	}
	defer cl.Close()
	next := 0
	for next < 100000 && l.prodCtx.Err() == nil {
		var recs []*kgo.Record
		for range 5 {
			recs = append(recs, &kgo.Record{Value: []byte(strconv.Itoa(next))})
			next++
		}
		for _, r := range cl.ProduceSync(l.prodCtx, recs...) {
			n, _ := strconv.Atoi(string(r.Record.Value))
			if r.Err != nil {
				l.fail("produce: " + r.Err.Error())
				continue
			}
			l.mu.Lock()
			l.acked[n] = true
			l.mu.Unlock()
		}
		select {
		case <-time.After(250 * time.Millisecond):
		case <-l.prodCtx.Done():
		}
	}
}

func (l *ShareLoad) fail(msg string) {
	l.mu.Lock()
	l.errs[msg]++
	l.mu.Unlock()
}

// consume runs one share consumer until reading stops.
func (l *ShareLoad) consume(cl *kgo.Client, failed *atomic.Int64) {
	for l.readCtx.Err() == nil {
		failed.Store(0)
		fs := cl.PollFetches(l.readCtx)
		type acked struct {
			n  int
			st kgo.AckStatus
		}
		var batch []acked
		l.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) {
			n, err := strconv.Atoi(string(r.Value))
			if err != nil {
				r.Ack(kgo.AckAccept)
				return
			}
			s := l.state[n]
			if s == nil {
				s = &shareRec{}
				l.state[n] = s
			}
			s.deliveries++
			s.partition, s.offset = r.Partition, r.Offset
			l.stats.Deliveries++
			switch {
			case s.accepted:
				l.ev.add("delivered after its acceptance was confirmed", "record %d (delivery %d, count %d)", n, s.deliveries, r.DeliveryCount())
			case s.rejected:
				l.ev.add("delivered after its rejection was confirmed", "record %d (delivery %d)", n, s.deliveries)
			}
			st := kgo.AckAccept
			switch {
			case shareReject(n):
				st = kgo.AckReject
			case shareReleaseFirst(n) && !s.released:
				st = kgo.AckRelease
				s.released = true
			}
			r.Ack(st)
			if st != kgo.AckRelease {
				s.tried = true
			}
			batch = append(batch, acked{n, st})
		})
		l.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		// Confirmed only if the flush completes (every ack sent and its
		// callback run) and no partition's acknowledgement failed.
		ctx, cancel := context.WithTimeout(l.readCtx, 10*time.Second)
		err := cl.FlushAcks(ctx)
		cancel()
		if err != nil || failed.Load() != 0 {
			continue
		}
		l.mu.Lock()
		for _, a := range batch {
			s := l.state[a.n]
			switch a.st {
			case kgo.AckAccept:
				if s.accepted {
					l.stats.AcceptedTwice++
				}
				s.accepted = true
			case kgo.AckReject:
				s.rejected = true
			}
		}
		l.mu.Unlock()
	}
}

// StopProducing stops the producer and waits for it.
func (l *ShareLoad) StopProducing() {
	l.stopProd()
	l.prodWG.Wait()
}

// ShareResult is the share workload's outcome.
type ShareResult struct {
	Produced      int // records acknowledged to the producer
	Accepted      int // confirmed accepted
	Rejected      int // confirmed rejected
	Deliveries    int // records handed to consumers, redeliveries included
	Redelivered   int // records delivered more than once
	AcceptedTwice int // acceptance confirmed twice (a violation)
	AfterDone     int // delivered after a confirmed accept or reject (a violation)
	Unconfirmed   int // accepted or rejected without confirmation, done in the stored state
	Lost          int // produced, never accepted or rejected (a violation)
	Errors        map[string]int
	Evidence      []string
}

// Violations counts what must never happen.
func (r ShareResult) Violations() int { return r.AcceptedTwice + r.AfterDone + r.Lost }

// Check lets the consumers drain the topic until every produced record is
// accepted or rejected or nothing changed for quiet (at most limit), stops
// them and checks the ledger.
func (l *ShareLoad) Check(ctx context.Context, quiet, limit time.Duration) ShareResult {
	deadline := time.Now().Add(limit)
	last, lastDone := time.Now(), -1
	for time.Now().Before(deadline) && ctx.Err() == nil {
		l.mu.Lock()
		done, want := 0, len(l.acked)
		for n := range l.acked {
			if s := l.state[n]; s != nil && (s.accepted || s.rejected) {
				done++
			}
		}
		l.mu.Unlock()
		if done == want {
			break
		}
		if done != lastDone {
			last, lastDone = time.Now(), done
		}
		if time.Since(last) > quiet {
			break
		}
		hold(ctx, 500*time.Millisecond)
	}
	l.stopRead()
	l.readWG.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	res := l.stats
	res.Produced = len(l.acked)
	res.Errors = l.errs
	for n, s := range l.state {
		if s.accepted {
			res.Accepted++
		}
		if s.rejected {
			res.Rejected++
		}
		if s.deliveries > 1 {
			res.Redelivered++
		}
		_ = n
	}
	starts, err := l.storedStarts(ctx)
	if err != nil {
		l.errs["reading the stored share state: "+err.Error()]++
	}
	for n := range l.acked {
		s := l.state[n]
		if s != nil && (s.accepted || s.rejected) {
			continue
		}
		if s != nil && s.tried {
			if start, ok := starts[s.partition]; ok && s.offset < start {
				res.Unconfirmed++ // its unconfirmed accept or reject was stored
				continue
			}
		}
		res.Lost++
		l.ev.add("produced and acknowledged, never accepted or rejected", "record %d (%s)", n, describeShare(s))
	}
	res.AfterDone = l.ev.counts["delivered after its acceptance was confirmed"] + l.ev.counts["delivered after its rejection was confirmed"]
	if res.AcceptedTwice > 0 {
		l.ev.add("acceptance confirmed twice", "%d records", res.AcceptedTwice)
	}
	res.Evidence = append(res.Evidence, l.ev.lines...)
	return res
}

func describeShare(s *shareRec) string {
	if s == nil {
		return "never delivered"
	}
	return fmt.Sprintf("delivered %d times, released %v", s.deliveries, s.released)
}

// Progress returns how many records the producer got acknowledged and how
// many were confirmed accepted so far.
func (l *ShareLoad) Progress() (produced, accepted int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.state {
		if s.accepted {
			accepted++
		}
	}
	return len(l.acked), accepted
}

// storedStarts reads the group's start offset per partition of the topic
// (ReadShareGroupState): every record below it is acknowledged or
// archived in the stored state.
func (l *ShareLoad) storedStarts(ctx context.Context) (map[int32]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	mreq := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(l.topic)
	mreq.Topics = append(mreq.Topics, mt)
	mresp, err := mreq.RequestWith(ctx, l.admin)
	if err != nil {
		return nil, err
	}
	if len(mresp.Topics) != 1 {
		return nil, fmt.Errorf("metadata of %s: %d topics", l.topic, len(mresp.Topics))
	}
	req := kmsg.NewPtrReadShareGroupStateRequest()
	req.GroupID = l.group
	rt := kmsg.NewReadShareGroupStateRequestTopic()
	rt.TopicID = mresp.Topics[0].TopicID
	for _, p := range mresp.Topics[0].Partitions {
		rp := kmsg.NewReadShareGroupStateRequestTopicPartition()
		rp.Partition = p.Partition
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, l.admin)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode == 0 {
				out[p.Partition] = p.StartOffset
			}
		}
	}
	return out, nil
}
