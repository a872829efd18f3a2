package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// LoadConfig sizes the load. Every loop is bounded by MaxRecords and by
// the context the load runs under.
type LoadConfig struct {
	Seeds []string // Kafka addresses of the nodes

	TopicAll   string // acks=all, idempotent producers
	TopicOne   string // acks=1 producer
	Group      string
	Partitions int32 // of TopicAll at the start
	PartsOne   int32 // of TopicOne

	Producers   int     // idempotent acks=all clients
	RateAll     float64 // records/s per acks=all client per partition
	RateOne     float64 // records/s of the acks=1 client per partition
	InFlight    int     // unacknowledged records per client per partition
	Readers     int     // direct consumers
	GroupSize   int     // consumer group members
	MaxRecords  int64   // records per producer client, at most
	CommitEvery time.Duration
	// TopicConfigs are set on both topics at creation (e.g. a short
	// segment.ms, so rolls happen during the run).
	TopicConfigs map[string]string
	// Log receives every client's franz-go log; nil discards.
	Log io.Writer
}

// Load is the running load: producers, direct consumers, a consumer group
// and a poller of the group's committed offsets.
type Load struct {
	cfg LoadConfig
	rec *Recorder

	prodCtx    context.Context // producing stops when it ends
	stopProd   context.CancelFunc
	readCtx    context.Context // reading stops when it ends
	stopRead   context.CancelFunc
	prodWG     sync.WaitGroup
	readWG     sync.WaitGroup
	producers  []*producer
	readers    []*kgo.Client
	members    []*kgo.Client
	admin      *kgo.Client
	partsAll   atomic.Int32
	partStarts sync.Map // int32 partition → time.Duration its producers started
}

type producer struct {
	name    string
	topic   string
	acksAll bool
	cl      *kgo.Client
	rate    float64
	count   atomic.Int64
	max     int64
}

// clientOpts are every client's options: seeds, quick metadata refreshes,
// and franz-go's own log (info level) to log, each line prefixed by name.
func clientOpts(seeds []string, log io.Writer, name string, extra ...kgo.Opt) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.MetadataMaxAge(3 * time.Second),
		kgo.DialTimeout(3 * time.Second),
		kgo.ClientID("strata-chaos-" + name),
	}
	if log != nil {
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(log, kgo.LogLevelInfo, func() string {
			return time.Now().UTC().Format("2006-01-02T15:04:05.000Z ") + name + " "
		})))
	}
	return append(opts, extra...)
}

// lockedWriter serializes writes to w (franz-go logs from many goroutines).
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// StartLoad creates the topics and starts every client.
func StartLoad(ctx context.Context, cfg LoadConfig, rec *Recorder) (_ *Load, err error) {
	l := &Load{cfg: cfg, rec: rec}
	l.prodCtx, l.stopProd = context.WithCancel(context.Background())
	l.readCtx, l.stopRead = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	if l.admin, err = kgo.NewClient(clientOpts(cfg.Seeds, cfg.Log, "admin")...); err != nil {
		return nil, err
	}
	for _, t := range []struct {
		name  string
		parts int32
	}{{cfg.TopicAll, cfg.Partitions}, {cfg.TopicOne, cfg.PartsOne}} {
		if err := retry(ctx, 30*time.Second, func(ctx context.Context) error {
			if err := createTopic(ctx, l.admin, t.name, t.parts, cfg.TopicConfigs); err != nil {
				return err
			}
			n, err := partitionCount(ctx, l.admin, t.name)
			if err == nil && n != t.parts {
				err = fmt.Errorf("topic %s has %d partitions, want %d", t.name, n, t.parts)
			}
			return err
		}); err != nil {
			return nil, err
		}
	}
	l.partsAll.Store(cfg.Partitions)

	for i := range cfg.Producers {
		cl, err := kgo.NewClient(clientOpts(cfg.Seeds, cfg.Log, "a"+strconv.Itoa(i),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.ProducerLinger(5*time.Millisecond),
		)...)
		if err != nil {
			return nil, err
		}
		l.producers = append(l.producers, &producer{name: "a" + strconv.Itoa(i), topic: cfg.TopicAll, acksAll: true, cl: cl, rate: cfg.RateAll, max: cfg.MaxRecords})
	}
	cl, err := kgo.NewClient(clientOpts(cfg.Seeds, cfg.Log, "b0",
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.LeaderAck()),
		kgo.DisableIdempotentWrite(),
		kgo.ProducerLinger(5*time.Millisecond),
	)...)
	if err != nil {
		return nil, err
	}
	one := &producer{name: "b0", topic: cfg.TopicOne, cl: cl, rate: cfg.RateOne, max: cfg.MaxRecords}
	l.producers = append(l.producers, one)

	for i := range cfg.Readers {
		cl, err := kgo.NewClient(clientOpts(rotate(cfg.Seeds, i), cfg.Log, "reader"+strconv.Itoa(i),
			kgo.ConsumeTopics(cfg.TopicAll, cfg.TopicOne),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchMaxWait(500*time.Millisecond),
		)...)
		if err != nil {
			return nil, err
		}
		l.readers = append(l.readers, cl)
		log := rec.newReader("reader"+strconv.Itoa(i), false)
		l.readWG.Add(1)
		go l.consume(cl, log)
	}
	for i := range cfg.GroupSize {
		cl, err := kgo.NewClient(clientOpts(rotate(cfg.Seeds, i+1), cfg.Log, "member"+strconv.Itoa(i),
			kgo.ConsumerGroup(cfg.Group),
			kgo.ConsumeTopics(cfg.TopicAll),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.AutoCommitInterval(cfg.CommitEvery),
			kgo.FetchMaxWait(500*time.Millisecond),
		)...)
		if err != nil {
			return nil, err
		}
		l.members = append(l.members, cl)
		log := rec.newReader("member"+strconv.Itoa(i), true)
		l.readWG.Add(1)
		go l.consume(cl, log)
	}
	l.readWG.Add(1)
	go l.pollCommits()

	for _, p := range l.producers {
		parts := cfg.Partitions
		if !p.acksAll {
			parts = cfg.PartsOne
		}
		for part := range parts {
			l.startPartition(p, part)
		}
	}
	for part := range cfg.Partitions {
		l.partStarts.Store(part, rec.since())
	}
	return l, nil
}

// rotate returns seeds starting at index i, so clients bootstrap from
// different nodes.
func rotate(seeds []string, i int) []string {
	i %= len(seeds)
	return append(append([]string(nil), seeds[i:]...), seeds[:i]...)
}

// retry runs f until it succeeds, ctx ends or limit passes.
func retry(ctx context.Context, limit time.Duration, f func(context.Context) error) error {
	deadline := time.Now().Add(limit)
	for {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := f(rctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond): // polling a condition
		}
	}
}

func (l *Load) startPartition(p *producer, part int32) {
	l.prodWG.Add(1)
	go func() {
		defer l.prodWG.Done()
		l.producePartition(p, part)
	}()
}

// producePartition produces values "<producer>-<partition>-<seq>" to one
// partition at the producer's rate, with at most InFlight unacknowledged;
// a stalled partition stalls only itself.
func (l *Load) producePartition(p *producer, part int32) {
	sem := make(chan struct{}, l.cfg.InFlight)
	interval := time.Duration(float64(time.Second) / p.rate)
	next := time.Now()
	who := p.name
	for seq := 0; ; seq++ {
		if d := time.Until(next); d > 0 {
			select {
			case <-time.After(d):
			case <-l.prodCtx.Done():
				return
			}
		}
		next = next.Add(interval)
		if now := time.Now(); next.Before(now.Add(-interval)) {
			next = now // no burst to catch up after a stall
		}
		select {
		case sem <- struct{}{}:
		case <-l.prodCtx.Done():
			return
		}
		if l.prodCtx.Err() != nil || p.count.Add(1) > p.max {
			return
		}
		value := fmt.Sprintf("%s-%d-%d", p.name, part, seq)
		l.rec.attemptedAdd(p.acksAll)
		r := &kgo.Record{Topic: p.topic, Partition: part, Value: []byte(value)}
		// The record's context is not the load's: stopping the load must not
		// fail records that are already buffered; Flush waits for them.
		p.cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
			<-sem
			switch {
			case err != nil && strings.Contains(err.Error(), "invalid record partitioning choice"):
				// A partition just added that this client's metadata does not
				// show yet: the record was never sent.
				l.rec.notSent()
			case err != nil && p.acksAll:
				l.rec.failAll(value, err)
			case err != nil:
				l.rec.failOne(err)
			case p.acksAll:
				l.rec.ackAll(tpo{tp{r.Topic, r.Partition}, r.Offset}, value, who)
			default:
				l.rec.ackOne(tpo{tp{r.Topic, r.Partition}, r.Offset}, value)
			}
		})
	}
}

// consume polls cl until the read context ends, recording every record.
func (l *Load) consume(cl *kgo.Client, log *readerLog) {
	defer l.readWG.Done()
	for l.readCtx.Err() == nil {
		fs := cl.PollFetches(l.readCtx)
		if fs.IsClientClosed() {
			return
		}
		fs.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			var dl *kgo.ErrDataLoss
			if errors.As(err, &dl) {
				log.mu.Lock()
				log.dataLoss = append(log.dataLoss, fmt.Sprintf("+%s %s", fmtDur(l.rec.since()), dl.Error()))
				log.mu.Unlock()
				return
			}
			log.fetchErr(err.Error())
		})
		fs.EachRecord(func(r *kgo.Record) {
			l.rec.read(log, tpo{tp{r.Topic, r.Partition}, r.Offset}, string(r.Value))
		})
	}
}

// pollCommits fetches the group's committed offsets every 500ms.
func (l *Load) pollCommits() {
	defer l.readWG.Done()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-l.readCtx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(l.readCtx, 3*time.Second)
		offs, node, err := committedOffsets(ctx, l.admin, l.cfg.Group)
		cancel()
		if l.readCtx.Err() != nil {
			return
		}
		l.rec.committed(offs, node, err)
	}
}

// PartitionsAll is the acks=all topic's partition count as the load knows
// it.
func (l *Load) PartitionsAll() int32 { return l.partsAll.Load() }

// GrowTo starts producing to the acks=all topic's partitions up to total
// (after CreatePartitions), once the metadata shows them.
func (l *Load) GrowTo(ctx context.Context, total int32) error {
	old := l.partsAll.Load()
	if total <= old {
		return nil
	}
	err := retry(ctx, 15*time.Second, func(ctx context.Context) error {
		n, err := partitionCount(ctx, l.admin, l.cfg.TopicAll)
		if err == nil && n < total {
			err = fmt.Errorf("metadata shows %d partitions, want %d", n, total)
		}
		return err
	})
	if err != nil {
		return err
	}
	if l.prodCtx.Err() != nil {
		return nil
	}
	l.partsAll.Store(total)
	for _, p := range l.producers {
		p.cl.ForceMetadataRefresh()
	}
	for part := old; part < total; part++ {
		l.partStarts.Store(part, l.rec.since())
		for _, p := range l.producers {
			if p.acksAll {
				l.startPartition(p, part)
			}
		}
	}
	return nil
}

// StopProducing stops new records, waits up to limit for the buffered
// ones to be acknowledged or fail, and closes the producers (records still
// unanswered then fail: they count as not acknowledged).
func (l *Load) StopProducing(limit time.Duration) (unfinished int64) {
	l.stopProd()
	l.prodWG.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var wg sync.WaitGroup
	var left atomic.Int64
	for _, p := range l.producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.cl.Flush(ctx); err != nil {
				left.Add(p.cl.BufferedProduceRecords())
			}
			p.cl.Close()
		}()
	}
	wg.Wait()
	return left.Load()
}

// partStart is when the acks=all producers started on partition part.
func (l *Load) partStart(part int32) (time.Duration, bool) {
	v, ok := l.partStarts.Load(part)
	if !ok {
		return 0, false
	}
	return v.(time.Duration), true
}

// StopReading stops the consumers (group members leave, committing what
// they polled) and the commit poller, each within limit.
func (l *Load) StopReading(limit time.Duration) {
	// One last look at the committed offsets before the members leave.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	offs, node, err := committedOffsets(ctx, l.admin, l.cfg.Group)
	cancel()
	l.rec.committed(offs, node, err)
	l.stopRead()
	done := make(chan struct{})
	go func() {
		var wg sync.WaitGroup
		for _, cl := range append(append([]*kgo.Client(nil), l.readers...), l.members...) {
			wg.Add(1)
			go func() { defer wg.Done(); cl.Close() }()
		}
		wg.Wait()
		l.readWG.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(limit):
	}
	l.readers, l.members = nil, nil
}

// Close stops everything still running.
func (l *Load) Close() {
	l.stopProd()
	l.stopRead()
	for _, p := range l.producers {
		p.cl.Close()
	}
	for _, cl := range append(l.readers, l.members...) {
		cl.Close()
	}
	if l.admin != nil {
		l.admin.Close()
	}
}

// fmtDur prints d in seconds with millisecond precision.
func fmtDur(d time.Duration) string { return fmt.Sprintf("%.3fs", d.Seconds()) }
