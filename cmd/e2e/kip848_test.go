package e2e

// KIP-848 consumer groups end to end with librdkafka's new consumer
// (confluent-kafka-go v2.11.1 bundles librdkafka 2.11; group.protocol=
// consumer makes it speak ConsumerGroupHeartbeat) on a three-process
// cluster: members join, leave and rejoin while partitions move between
// them; a classic franz-go member shares the group; the group's coordinator
// is killed with kill -9 and the members carry on with the next one, which
// loads the group from etcd. Nothing produced may go unread and the
// committed offsets must end at the high watermarks.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// k848Tally counts what the members of the group read, by (partition,
// offset), and by member.
type k848Tally struct {
	start    time.Time // reads are timed from here, as the test's "t+"
	mu       sync.Mutex
	seen     map[[2]int64]int
	byMember map[string]int
	reads    []k848Read // every read, in order
}

type k848Read struct {
	member      string
	partition   int32
	offset      int64
	leaderEpoch int32 // of the record's batch, -1 when the client does not say
	at          time.Duration
}

func (r k848Read) String() string {
	return fmt.Sprintf("%s at t+%v (leader epoch %d)", r.member, r.at.Round(time.Millisecond), r.leaderEpoch)
}

func newK848Tally(start time.Time) *k848Tally {
	return &k848Tally{start: start, seen: map[[2]int64]int{}, byMember: map[string]int{}}
}

func (t *k848Tally) add(member string, partition int32, offset int64, leaderEpoch int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seen[[2]int64{int64(partition), offset}]++
	t.byMember[member]++
	t.reads = append(t.reads, k848Read{member, partition, offset, leaderEpoch, time.Since(t.start)})
}

// fresh counts the records member read at or past hw (the high watermarks
// when a phase began): records produced during the phase.
func (t *k848Tally) fresh(member string, hw []int64) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, r := range t.reads {
		if r.member == member && int(r.partition) < len(hw) && r.offset >= hw[r.partition] {
			n++
		}
	}
	return n
}

// around says who read the records next to (partition, offset), for a
// record nobody read.
func (t *k848Tally) around(k [2]int64) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, r := range t.reads {
		if int64(r.partition) == k[0] && (r.offset == k[1]-1 || r.offset == k[1]+1) {
			out = append(out, fmt.Sprintf("%d read by %v", r.offset, r))
		}
	}
	return fmt.Sprintf("p%d@%d (neighbours: %s)", k[0], k[1], strings.Join(out, ", "))
}

// unread returns how many of acked were not read yet, and up to 10 of them.
func (t *k848Tally) unread(acked [][2]int64) (int, [][2]int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, some := 0, [][2]int64(nil)
	for _, k := range acked {
		if t.seen[k] == 0 {
			n++
			if len(some) < 10 {
				some = append(some, k)
			}
		}
	}
	return n, some
}

// dups returns how many reads were repeats of a record already read.
func (t *k848Tally) dups() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := 0
	for _, n := range t.seen {
		d += n - 1
	}
	return d
}

// dupRanges describes the records read more than once, as runs of
// offsets per partition with who read the first of each run and when.
func (t *k848Tally) dupRanges() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	readers := map[[2]int64][]string{}
	for _, r := range t.reads {
		k := [2]int64{int64(r.partition), r.offset}
		if t.seen[k] > 1 {
			readers[k] = append(readers[k], r.String())
		}
	}
	keys := make([][2]int64, 0, len(readers))
	for k := range readers {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y [2]int64) int {
		if x[0] != y[0] {
			return int(x[0] - y[0])
		}
		return int(x[1] - y[1])
	})
	var out []string
	for i := 0; i < len(keys); {
		j := i
		for j+1 < len(keys) && keys[j+1][0] == keys[i][0] && keys[j+1][1] == keys[j][1]+1 {
			j++
		}
		out = append(out, fmt.Sprintf("p%d@%d-%d, the first read by %v", keys[i][0], keys[i][1], keys[j][1], readers[keys[i]]))
		i = j + 1
	}
	return strings.Join(out, "; ")
}

func (t *k848Tally) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return fmt.Sprintf("%d distinct records read, by member %v", len(t.seen), t.byMember)
}

// k848Producer produces one record to each partition every 20ms with
// franz-go until stopped (or a bound on the count), and keeps the
// acknowledged (partition, offset) pairs.
type k848Producer struct {
	mu     sync.Mutex
	acked  [][2]int64
	err    error
	stop   chan struct{}
	done   chan struct{}
	cancel context.CancelFunc
}

func startK848Producer(ctx context.Context, cl *kgo.Client, topic string, partitions int32) *k848Producer {
	ctx, cancel := context.WithCancel(ctx)
	p := &k848Producer{stop: make(chan struct{}), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(p.done)
		const maxRounds = 20000 // 120,000 records at most
		for i := 0; i < maxRounds; i++ {
			select {
			case <-p.stop:
				return
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
			rs := make([]*kgo.Record, partitions)
			for n := range rs {
				rs[n] = &kgo.Record{Topic: topic, Partition: int32(n),
					Key: fmt.Appendf(nil, "%06d-%d", i, n), Value: fmt.Appendf(nil, "round %d partition %d", i, n)}
			}
			// Long enough for the partitions of a killed node to move.
			pctx, cancel := context.WithTimeout(ctx, 45*time.Second)
			res := cl.ProduceSync(pctx, rs...)
			cancel()
			p.mu.Lock()
			for _, r := range res {
				if r.Err == nil {
					p.acked = append(p.acked, [2]int64{int64(r.Record.Partition), r.Record.Offset})
				}
			}
			if err := res.FirstErr(); err != nil {
				p.err = fmt.Errorf("round %d: %w", i, err)
				p.mu.Unlock()
				return
			}
			p.mu.Unlock()
		}
	}()
	return p
}

func (p *k848Producer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.acked)
}

// abort stops the producer at once, in-flight records included.
func (p *k848Producer) abort() {
	p.cancel()
	<-p.done
}

// finish stops the producer after its in-flight records and returns what
// was acknowledged.
func (p *k848Producer) finish() ([][2]int64, error) {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.acked), p.err
}

// k848Member is a group member as the test sees it: what it owns by its
// own account (rebalance callbacks) and the errors its client reported.
type k848Member interface {
	name() string
	owned() []int32
	errors() []string
}

// rdkMember is a librdkafka consumer with group.protocol=consumer.
type rdkMember struct {
	id    string // client.id, what ConsumerGroupDescribe shows
	label string // the member in the test's messages ("b#2": b's second run)
	c     *kafka.Consumer
	logs  *tailBuffer

	mu      sync.Mutex
	own     map[int32]bool
	lost    int  // partitions taken away as lost (fenced), not revoked
	emptied bool // it owned nothing at some point after its first assignment
	errs    []string
	fatal   error
	closed  bool // close began: revoking everything is expected then

	stop     chan struct{}
	done     chan struct{} // the poll loop ended
	logStop  chan struct{} // Close returned (or gave up): stop logging
	logsDone chan struct{}
}

func (m *rdkMember) name() string { return m.label }

func (m *rdkMember) owned() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int32
	for p := range m.own {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func (m *rdkMember) errors() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.errs)
}

func (m *rdkMember) addErr(s string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.errs) < 200 {
		m.errs = append(m.errs, time.Now().Format("15:04:05.000")+" "+s)
	}
}

// rdkQuietTags are librdkafka debug lines left out of the member's log:
// they repeat every auto-commit interval.
var rdkQuietTags = map[string]bool{"OFFSET": true, "DUMP": true, "DUMP_ALL": true, "DUMP_PND": true,
	"DUMP_QRY": true, "DUMP_REM": true, "ASSIGNDONE": true}

// startRdkMember starts a librdkafka KIP-848 consumer with client.id name
// (which ConsumerGroupDescribe reports) that reads topic from the start and
// counts what it reads in tl under label. It stores the offset of each
// record once counted and auto-commits the stored offsets every 200ms:
// with librdkafka's automatic offset store a record that Close polls
// internally (and drops) would be committed unread. Its log (with the cgrp
// debug context) goes to a buffer whose tail is printed only when the test
// fails.
func startRdkMember(t *testing.T, seeds []string, group, topic, name, label string, tl *k848Tally) *rdkMember {
	t.Helper()
	m := &rdkMember{
		id: name, label: label, logs: &tailBuffer{max: 1 << 20}, own: map[int32]bool{},
		stop: make(chan struct{}), done: make(chan struct{}), logStop: make(chan struct{}), logsDone: make(chan struct{}),
	}
	logCh := make(chan kafka.LogEvent, 1000)
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers":        strings.Join(seeds, ","),
		"client.id":                name,
		"group.id":                 group,
		"group.protocol":           "consumer",
		"auto.offset.reset":        "earliest",
		"enable.auto.commit":       true,
		"enable.auto.offset.store": false,
		"auto.commit.interval.ms":  200,
		"fetch.wait.max.ms":        200,
		"reconnect.backoff.ms":     50,
		"reconnect.backoff.max.ms": 1000,
		"debug":                    "cgrp",
		"log_level":                7,
		"go.logs.channel.enable":   true,
		"go.logs.channel":          logCh,
	})
	if err != nil {
		t.Fatalf("librdkafka consumer %s: %v", name, err)
	}
	m.c = c
	go func() {
		defer close(m.logsDone)
		for {
			select {
			case e := <-logCh:
				if !rdkQuietTags[e.Tag] {
					fmt.Fprintf(m.logs, "%s %s %d %s\n", e.Timestamp.Format("15:04:05.000"), e.Tag, e.Level, e.Message)
				}
			case <-m.logStop:
				// Drain what is left, then stop.
				for {
					select {
					case e := <-logCh:
						if !rdkQuietTags[e.Tag] {
							fmt.Fprintf(m.logs, "%s %s %d %s\n", e.Timestamp.Format("15:04:05.000"), e.Tag, e.Level, e.Message)
						}
					default:
						return
					}
				}
			}
		}
	}()
	rebalance := func(c *kafka.Consumer, ev kafka.Event) error {
		m.mu.Lock()
		defer m.mu.Unlock()
		switch e := ev.(type) {
		case kafka.AssignedPartitions:
			for _, tp := range e.Partitions {
				m.own[tp.Partition] = true
			}
		case kafka.RevokedPartitions:
			if c.AssignmentLost() {
				m.lost += len(e.Partitions)
			}
			for _, tp := range e.Partitions {
				delete(m.own, tp.Partition)
			}
			if len(m.own) == 0 && !m.closed {
				m.emptied = true
			}
		}
		return nil // the wrapper applies the (incremental) assignment
	}
	if err := c.SubscribeTopics([]string{topic}, rebalance); err != nil {
		c.Close()
		t.Fatalf("librdkafka consumer %s: subscribe: %v", name, err)
	}
	go func() {
		for {
			select {
			case <-m.stop:
				close(m.done)
				return
			default:
			}
			switch e := c.Poll(100).(type) {
			case *kafka.Message:
				if e.TopicPartition.Error != nil {
					m.addErr(fmt.Sprintf("message error on partition %d: %v", e.TopicPartition.Partition, e.TopicPartition.Error))
					continue
				}
				epoch := int32(-1)
				if e.TopicPartition.LeaderEpoch != nil {
					epoch = *e.TopicPartition.LeaderEpoch
				}
				tl.add(label, e.TopicPartition.Partition, int64(e.TopicPartition.Offset), epoch)
				if _, err := c.StoreMessage(e); err != nil {
					m.addErr(fmt.Sprintf("store offset %d of partition %d: %v", e.TopicPartition.Offset, e.TopicPartition.Partition, err))
				}
			case kafka.Error:
				m.addErr(fmt.Sprintf("error event: %v (code %v, fatal %v)", e, e.Code(), e.IsFatal()))
				if e.IsFatal() {
					m.mu.Lock()
					m.fatal = e
					m.mu.Unlock()
				}
			}
		}
	}()
	t.Cleanup(func() {
		m.close(t)
		if t.Failed() {
			t.Logf("librdkafka member %s: error events:\n%s\nlog tail:\n%s", label, strings.Join(m.errors(), "\n"), tail(m.logs.String()))
		}
	})
	return m
}

// close stops polling, commits what was read and closes the consumer,
// which leaves the group (ConsumerGroupHeartbeat with epoch -1).
func (m *rdkMember) close(t *testing.T) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	m.mu.Unlock()
	close(m.stop)
	<-m.done
	if _, err := m.c.Commit(); err != nil {
		var ke kafka.Error
		if !errors.As(err, &ke) || ke.Code() != kafka.ErrNoOffset {
			m.addErr(fmt.Sprintf("final commit: %v", err))
		}
	}
	closed := make(chan error, 1)
	go func() { closed <- m.c.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("librdkafka member %s: close: %v", m.label, err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("librdkafka member %s did not close within 30s (librdkafka 2.11 spins for session.timeout.ms on a "+
			"commit answered STALE_MEMBER_EPOCH when its epoch moved in answer to its last heartbeat before Close)", m.label)
	}
	close(m.logStop)
	<-m.logsDone
}

// kgoClassicMember is a franz-go group member on the classic protocol
// (JoinGroup/SyncGroup with its cooperative-sticky balancer).
type kgoClassicMember struct {
	id     string
	cl     *kgo.Client
	mu     sync.Mutex
	own    map[int32]bool
	errs   []string
	closed bool
	stop   context.CancelFunc
	done   chan struct{}
}

func (m *kgoClassicMember) name() string { return m.id }

func (m *kgoClassicMember) owned() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int32
	for p := range m.own {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func (m *kgoClassicMember) errors() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.errs)
}

func startKgoClassicMember(t *testing.T, seeds []string, group, topic, name string, tl *k848Tally) *kgoClassicMember {
	t.Helper()
	m := &kgoClassicMember{id: name, own: map[int32]bool{}, done: make(chan struct{})}
	drop := func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, p := range r[topic] {
			delete(m.own, p)
		}
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		kgo.ClientID(name),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.HeartbeatInterval(500*time.Millisecond),
		kgo.AutoCommitInterval(200*time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range a[topic] {
				m.own[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, r map[string][]int32) {
			// What was read is committed before the partitions go.
			if err := cl.CommitMarkedOffsets(ctx); err != nil {
				m.mu.Lock()
				m.errs = append(m.errs, "commit on revoke: "+err.Error())
				m.mu.Unlock()
			}
			drop(ctx, cl, r)
		}),
		kgo.OnPartitionsLost(drop),
	)
	if err != nil {
		t.Fatalf("kgo classic member %s: %v", name, err)
	}
	m.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	m.stop = cancel
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			if fs.IsClientClosed() {
				return
			}
			fs.EachError(func(tp string, p int32, err error) {
				if !errors.Is(err, context.Canceled) {
					m.mu.Lock()
					if len(m.errs) < 200 {
						m.errs = append(m.errs, fmt.Sprintf("fetch %s[%d]: %v", tp, p, err))
					}
					m.mu.Unlock()
				}
			})
			fs.EachRecord(func(r *kgo.Record) { tl.add(name, r.Partition, r.Offset, r.LeaderEpoch) })
		}
	}()
	t.Cleanup(func() {
		m.close(t)
		if t.Failed() {
			t.Logf("kgo classic member %s errors:\n%s", name, strings.Join(m.errors(), "\n"))
		}
	})
	return m
}

// close stops polling, commits what was read and leaves the group.
func (m *kgoClassicMember) close(t *testing.T) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	m.mu.Unlock()
	m.stop()
	<-m.done
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := m.cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Errorf("kgo classic member %s: final commit: %v", m.id, err)
	}
	m.cl.Close() // LeaveGroup
}

// k848Describe is one ConsumerGroupDescribe answer, reduced to what the test
// checks.
type k848Describe struct {
	state   string
	epoch   int32
	members map[string][]int32 // by client id
	types   map[string]int8    // by client id
	ids     map[string]string  // client id -> member id
	epochs  map[string]int32   // client id -> member epoch
	dupIDs  []string           // client ids held by more than one member
}

func (d k848Describe) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "state %q epoch %d", d.state, d.epoch)
	names := make([]string, 0, len(d.members))
	for n := range d.members {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "; %s (type %d, epoch %d): %v", n, d.types[n], d.epochs[n], d.members[n])
	}
	if len(d.dupIDs) > 0 {
		fmt.Fprintf(&b, "; client ids on several members: %v", d.dupIDs)
	}
	return b.String()
}

// describeK848 asks the group's coordinator (kgo routes the request there)
// for the group.
func describeK848(ctx context.Context, cl *kgo.Client, group string) (k848Describe, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = []string{group}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return k848Describe{}, err
	}
	if len(resp.Groups) != 1 {
		return k848Describe{}, fmt.Errorf("%d groups in the answer", len(resp.Groups))
	}
	g := resp.Groups[0]
	if err := kerr.ErrorForCode(g.ErrorCode); err != nil {
		return k848Describe{}, err
	}
	d := k848Describe{state: g.State, epoch: g.Epoch, members: map[string][]int32{}, types: map[string]int8{},
		ids: map[string]string{}, epochs: map[string]int32{}}
	for _, m := range g.Members {
		var ps []int32
		for _, tp := range m.Assignment.TopicPartitions {
			ps = append(ps, tp.Partitions...)
		}
		slices.Sort(ps)
		if _, dup := d.members[m.ClientID]; dup {
			d.dupIDs = append(d.dupIDs, m.ClientID)
		}
		d.members[m.ClientID] = ps
		d.types[m.ClientID] = m.MemberType
		d.ids[m.ClientID] = m.MemberID
		d.epochs[m.ClientID] = m.MemberEpoch
	}
	return d, nil
}

// findCoordinatorK848 returns the node id and address that the cluster
// names as the group's coordinator.
func findCoordinatorK848(ctx context.Context, cl *kgo.Client, group string) (int32, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKey = group
	req.CoordinatorKeys = []string{group}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return -1, "", err
	}
	code, id, host, port := resp.ErrorCode, resp.NodeID, resp.Host, resp.Port
	if len(resp.Coordinators) == 1 {
		c := resp.Coordinators[0]
		code, id, host, port = c.ErrorCode, c.NodeID, c.Host, c.Port
	}
	if err := kerr.ErrorForCode(code); err != nil {
		return -1, "", err
	}
	return id, net.JoinHostPort(host, fmt.Sprint(port)), nil
}

// TestKIP848Librdkafka runs librdkafka's KIP-848 consumer (group.protocol=
// consumer, the server-side uniform assignor) against three `strata serve`
// processes:
//
//  1. member a alone owns the 6 partitions; b joins and they split 3/3; b
//     leaves and a owns 6 again; b rejoins and they split again, a reading
//     records in every phase;
//  2. a franz-go classic member (JoinGroup/SyncGroup) joins the same group:
//     ConsumerGroupDescribe shows it as type 0 beside the librdkafka members
//     (type 1), every member with partitions, the 6 partitions each owned
//     once; it leaves again;
//  3. once the members committed, the group's coordinator is killed with
//     kill -9; the members carry on with the next coordinator (which loads
//     the group from etcd) without losing their partitions: they keep
//     reading, their commits reach it, and a new member d gets 2 partitions
//     from a and b, which only their heartbeats to it can hand over. After
//     the producer stops every acknowledged record was read at least once
//     (duplicates are counted and reported) and, once the members commit
//     and close, the committed offsets are the high watermarks.
//
// Records flow from a franz-go producer the whole time.
func TestKIP848Librdkafka(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 170*time.Second)
	defer cancel()
	start := time.Now()
	const topic, group, partitions = "k848", "k848-rdk", int32(6)

	procs, seeds := startProcCluster(t, ctx, 3)
	admin := newClient(t, seeds[0], kgo.SeedBrokers(seeds...), kgo.RetryTimeout(10*time.Second))
	if n := ensureTopic(t, ctx, admin, topic); n != partitions {
		t.Fatalf("topic %s has %d partitions, want %d", topic, n, partitions)
	}
	waitLeaders(t, ctx, admin, topic, int(partitions))
	if v, s := kafka.LibraryVersion(); v < 0x020b0000 {
		t.Fatalf("librdkafka %s: the KIP-848 consumer needs 2.11 or later (confluent-kafka-go v2.11.1 bundles 2.11.1)", s)
	} else {
		t.Logf("t+%v: cluster of 3 up, topic %s ready; librdkafka %s", time.Since(start).Round(time.Millisecond), topic, s)
	}

	// Partition moves take a heartbeat or two: make them 1s.
	{
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Op, c.Value = "consumer.heartbeat.interval.ms", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("1000")
		rr.Configs = append(rr.Configs, c)
		req.Resources = append(req.Resources, rr)
		resp, err := req.RequestWith(ctx, admin)
		if err != nil {
			t.Fatalf("IncrementalAlterConfigs on group %s: %v", group, err)
		}
		if len(resp.Resources) != 1 {
			t.Fatalf("IncrementalAlterConfigs on group %s: %d resources in the answer", group, len(resp.Resources))
		}
		if err := kerr.ErrorForCode(resp.Resources[0].ErrorCode); err != nil {
			msg := ""
			if resp.Resources[0].ErrorMessage != nil {
				msg = *resp.Resources[0].ErrorMessage
			}
			t.Fatalf("IncrementalAlterConfigs consumer.heartbeat.interval.ms=1000 on group %s: %v (%s)", group, err, msg)
		}
	}

	prodCl := newClient(t, seeds[0], kgo.SeedBrokers(seeds...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0), kgo.RequiredAcks(kgo.AllISRAcks()))
	prod := startK848Producer(ctx, prodCl, topic, partitions)
	defer prod.abort()
	tl := newK848Tally(start)

	var members []k848Member
	diag := func() string {
		var b strings.Builder
		fmt.Fprintf(&b, "\n  tally: %v; producer acknowledged %d", tl, prod.count())
		for _, m := range members {
			errs := m.errors()
			if len(errs) > 15 {
				errs = errs[len(errs)-15:]
			}
			fmt.Fprintf(&b, "\n  member %s owns %v by its own account; last error events: %v", m.name(), m.owned(), errs)
		}
		return b.String()
	}
	failf := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+diag(), args...)
	}
	phase := func(format string, args ...any) {
		t.Helper()
		t.Logf("t+%v: %s", time.Since(start).Round(time.Millisecond), fmt.Sprintf(format, args...))
	}

	// waitSplit waits until the coordinator reports the group Stable with
	// exactly the members of want, each owning want[name] partitions (-1:
	// at least one), no partition twice and all 6 owned, and each member's
	// own view (its rebalance callbacks) agrees.
	waitSplit := func(what string, want map[string]int, own map[string]k848Member) k848Describe {
		t.Helper()
		deadline := time.Now().Add(45 * time.Second)
		var last string
		for {
			d, err := describeK848(ctx, admin, group)
			if err != nil {
				last = "describe: " + err.Error()
			} else {
				last = d.String()
				ok := d.state == "Stable" && len(d.members) == len(want) && len(d.dupIDs) == 0
				seen := map[int32]int{}
				for name, k := range want {
					ps, in := d.members[name]
					ok = ok && in && (len(ps) == k || (k < 0 && len(ps) > 0))
					for _, p := range ps {
						seen[p]++
					}
					if m := own[name]; m != nil && !slices.Equal(m.owned(), ps) {
						ok = false
						last += fmt.Sprintf("; %s's own view %v", name, m.owned())
					}
				}
				for p := int32(0); p < partitions; p++ {
					ok = ok && seen[p] == 1
				}
				ok = ok && len(seen) == int(partitions)
				if ok {
					phase("%s: %v", what, d)
					return d
				}
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				failf("%s: the group never reached %v (Stable, each partition owned once); last describe: %s", what, want, last)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	// endOffsets returns the high watermarks, retrying while partitions
	// move.
	endOffsets := func(what string) []int64 {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			ends, err := kadm.NewClient(admin).ListEndOffsets(ctx, topic)
			out := make([]int64, partitions)
			if err == nil {
				ends.Each(func(lo kadm.ListedOffset) {
					if err == nil && lo.Err != nil {
						err = fmt.Errorf("partition %d: %w", lo.Partition, lo.Err)
					}
					if lo.Partition >= 0 && lo.Partition < partitions {
						out[lo.Partition] = lo.Offset
					}
				})
				if err == nil && len(ends[topic]) != int(partitions) {
					err = fmt.Errorf("%d partitions listed", len(ends[topic]))
				}
			}
			if err == nil {
				return out
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				failf("%s: high watermarks of %s: %v", what, topic, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	// waitFresh waits until each of the members read at least 20 records
	// produced since the phase began (offsets at or past the high
	// watermarks then): they consume in this phase, not just a backlog.
	waitFresh := func(what string, ms ...k848Member) {
		t.Helper()
		hw := endOffsets(what)
		deadline := time.Now().Add(30 * time.Second)
		for _, m := range ms {
			for tl.fresh(m.name(), hw) < 20 {
				if time.Now().After(deadline) || ctx.Err() != nil {
					failf("%s: member %s read %d records produced in this phase (past %v), want at least 20",
						what, m.name(), tl.fresh(m.name(), hw), hw)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	// checkMembers fails if a librdkafka member hit a fatal error, had
	// partitions taken away as lost (fenced) or, for the members named in
	// steady, ever owned nothing since its first assignment.
	checkMembers := func(what string, steady ...*rdkMember) {
		t.Helper()
		for _, m := range members {
			rm, ok := m.(*rdkMember)
			if !ok {
				continue
			}
			rm.mu.Lock()
			fatal, lost, emptied := rm.fatal, rm.lost, rm.emptied
			rm.mu.Unlock()
			switch {
			case fatal != nil:
				failf("%s: librdkafka member %s hit a fatal error: %v", what, rm.label, fatal)
			case lost > 0:
				failf("%s: librdkafka member %s had %d partitions taken away as lost (its membership fenced or expired), not revoked", what, rm.label, lost)
			case emptied && slices.Contains(steady, rm):
				failf("%s: librdkafka member %s owned no partition at some point after its first assignment", what, rm.label)
			}
		}
	}

	// waitCommitted waits until the group's committed offsets (FetchOffsets
	// at its coordinator) reach hw on every partition: the members commit
	// as they read.
	waitCommitted := func(what string, hw []int64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			offs, err := kadm.NewClient(admin).FetchOffsets(ctx, group)
			got := make([]int64, partitions)
			ok := err == nil
			for p := range partitions {
				o, found := offs.Lookup(topic, p)
				got[p] = o.At
				ok = ok && found && o.Err == nil && o.At >= hw[p]
			}
			if ok {
				phase("%s: committed offsets %v (high watermarks were %v)", what, got, hw)
				return
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				failf("%s: committed offsets %v (%v), want at least %v", what, got, err, hw)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// 1. Join, leave, rejoin.
	a := startRdkMember(t, seeds, group, topic, "a", "a", tl)
	members = append(members, a)
	waitSplit("a alone", map[string]int{"a": 6}, map[string]k848Member{"a": a})
	waitFresh("a alone", a)

	b := startRdkMember(t, seeds, group, topic, "b", "b", tl)
	members = append(members, b)
	waitSplit("b joined", map[string]int{"a": 3, "b": 3}, map[string]k848Member{"a": a, "b": b})
	waitFresh("b joined", a, b)

	b.close(t)
	waitSplit("b left", map[string]int{"a": 6}, map[string]k848Member{"a": a})
	waitFresh("b left", a)

	b2 := startRdkMember(t, seeds, group, topic, "b", "b#2", tl)
	members = append(members, b2)
	waitSplit("b rejoined", map[string]int{"a": 3, "b": 3}, map[string]k848Member{"a": a, "b": b2})
	waitFresh("b rejoined", a, b2)
	checkMembers("join/leave/rejoin", a)

	// 2. A classic member in the same group.
	c := startKgoClassicMember(t, seeds, group, topic, "c", tl)
	members = append(members, c)
	d := waitSplit("classic member c joined", map[string]int{"a": -1, "b": -1, "c": -1},
		map[string]k848Member{"a": a, "b": b2, "c": c})
	if d.types["a"] != 1 || d.types["b"] != 1 || d.types["c"] != 0 {
		failf("member types a=%d b=%d c=%d, want a and b consumer-protocol (1), c classic (0)", d.types["a"], d.types["b"], d.types["c"])
	}
	waitFresh("classic member c joined", a, b2, c)
	c.close(t)
	waitSplit("classic member c left", map[string]int{"a": 3, "b": 3}, map[string]k848Member{"a": a, "b": b2})
	waitFresh("classic member c left", a, b2)
	checkMembers("classic member", a, b2)

	// 3. Kill the coordinator once the members committed what was there
	// when the phase began.
	waitCommitted("before the kill", endOffsets("before the kill"))
	coord, coordAddr, err := findCoordinatorK848(ctx, admin, group)
	if err != nil {
		failf("FindCoordinator %s: %v", group, err)
	}
	if coord < 0 || int(coord) >= len(procs) || procs[coord].kafkaAddr != coordAddr {
		failf("FindCoordinator %s names node %d at %s, which is not one of the cluster's nodes %v", group, coord, coordAddr, seeds)
	}
	before := d.ids
	procs[coord].kill(t)
	dupsBeforeKill := tl.dups()
	phase("killed node %d (%s), the coordinator of %s, with kill -9", coord, coordAddr, group)
	var live []string
	for i, p := range procs {
		if int32(i) != coord {
			live = append(live, p.kafkaAddr)
		}
	}
	liveAdmin := newClient(t, live[0], kgo.SeedBrokers(live...), kgo.RetryTimeout(10*time.Second))
	admin = liveAdmin
	// The next coordinator is named once the dead node's lease expires.
	var next int32
	coordDeadline := time.Now().Add(60 * time.Second)
	for {
		id, _, err := findCoordinatorK848(ctx, liveAdmin, group)
		if err == nil && id != coord && id >= 0 {
			next = id
			break
		}
		if time.Now().After(coordDeadline) {
			failf("no live node took over %s within 60s of the kill (last FindCoordinator: node %d, %v)", group, id, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	phase("node %d is the new coordinator of %s", next, group)
	d = waitSplit("after the coordinator's death", map[string]int{"a": 3, "b": 3}, map[string]k848Member{"a": a, "b": b2})
	waitFresh("after the coordinator's death", a, b2)
	checkMembers("after the coordinator's death", a, b2)
	for _, n := range []string{"a", "b"} {
		if before[n] != d.ids[n] {
			phase("note: member %s rejoined across the failover: member id %s before, %s after", n, before[n], d.ids[n])
		}
	}
	// The members commit to the new coordinator (OffsetCommit with their
	// member epochs, which it knows from etcd) ...
	waitCommitted("commits after the coordinator's death", endOffsets("after the coordinator's death"))
	// ... and heartbeat to it: a new member joins and a and b hand it
	// partitions, which only their heartbeats to the new coordinator can
	// do.
	dm := startRdkMember(t, live, group, topic, "d", "d", tl)
	members = append(members, dm)
	waitSplit("d joined under the new coordinator", map[string]int{"a": 2, "b": 2, "d": 2},
		map[string]k848Member{"a": a, "b": b2, "d": dm})
	waitFresh("d joined under the new coordinator", a, b2, dm)
	checkMembers("d joined under the new coordinator", a, b2)

	// Stop producing; every acknowledged record must be read.
	acked, perr := prod.finish()
	if perr != nil {
		failf("producer: %v", perr)
	}
	phase("producer stopped after %d acknowledged records", len(acked))
	readDeadline := time.Now().Add(45 * time.Second)
	for {
		n, some := tl.unread(acked)
		if n == 0 {
			break
		}
		if time.Now().After(readDeadline) || ctx.Err() != nil {
			var where []string
			for _, k := range some {
				where = append(where, tl.around(k))
			}
			failf("%d of %d acknowledged records were never read; some: %s", n, len(acked), strings.Join(where, "; "))
		}
		time.Sleep(100 * time.Millisecond)
	}
	dups := tl.dups()
	phase("every acknowledged record read at least once: %d records, %d read again (%d of them after the kill); %v",
		len(acked), dups, dups-dupsBeforeKill, tl)
	if dups > 0 {
		phase("records read more than once (first one's readers shown): %s", tl.dupRanges())
	}

	// The members commit and leave at once. librdkafka 2.11 drops the
	// heartbeat answers that come once it is leaving, so a member whose
	// epoch the coordinator moved (another member just left) commits its
	// revoked partitions with its old epoch. Strata takes such a commit
	// for partitions the member owned at that epoch (KIP-1251); a strict
	// epoch check (Apache Kafka before KIP-1251) answers
	// STALE_MEMBER_EPOCH, which librdkafka retries in a tight loop for
	// session.timeout.ms (45s) before Close returns, losing the final
	// commit. The committed offsets must then be the high watermarks, read
	// from a live node.
	var closing sync.WaitGroup
	for _, m := range []*rdkMember{a, b2, dm} {
		closing.Add(1)
		go func() {
			defer closing.Done()
			m.close(t)
		}()
	}
	closing.Wait()
	for _, m := range []*rdkMember{a, b2, dm} {
		for _, e := range m.errors() {
			if strings.Contains(e, "final commit") {
				failf("librdkafka member %s: %s", m.label, e)
			}
		}
	}
	adm := kadm.NewClient(liveAdmin)
	var lastCheck string
	checkDeadline := time.Now().Add(20 * time.Second)
	for {
		ends, err := adm.ListEndOffsets(ctx, topic)
		var offs kadm.OffsetResponses
		if err == nil {
			offs, err = adm.FetchOffsets(ctx, group)
		}
		if err == nil {
			var bad []string
			var hwSum int64
			ends.Each(func(lo kadm.ListedOffset) {
				hwSum += lo.Offset
				o, ok := offs.Lookup(topic, lo.Partition)
				if lo.Err != nil || !ok || o.Err != nil || o.At != lo.Offset {
					bad = append(bad, fmt.Sprintf("partition %d committed %d (found %v, err %v), high watermark %d (err %v)",
						lo.Partition, o.At, ok, o.Err, lo.Offset, lo.Err))
				}
			})
			sort.Strings(bad)
			if len(ends[topic]) != int(partitions) {
				bad = append(bad, fmt.Sprintf("%d partitions listed", len(ends[topic])))
			}
			if len(bad) == 0 {
				if hwSum != int64(len(acked)) {
					failf("the partitions hold %d records, the producer had %d acknowledged", hwSum, len(acked))
				}
				phase("committed offsets are the high watermarks on all %d partitions (%d records)", partitions, hwSum)
				break
			}
			lastCheck = strings.Join(bad, "; ")
		} else {
			lastCheck = err.Error()
		}
		if time.Now().After(checkDeadline) || ctx.Err() != nil {
			failf("after the members committed and closed: %s", lastCheck)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
