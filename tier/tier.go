package tier

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/tier/objstore"
)

// Config of the hot tier and flusher. Zero values take the defaults.
type Config struct {
	DataDir       string        // hot tier lives in DataDir/hot
	NodeID        int32         // written into flush objects and their keys
	FlushInterval time.Duration // default 25ms
	FlushBytes    int           // flush early once this much is pending; default 8 MiB
	// FlushesInFlight is how many flushes may be under way at once (the
	// next one's PUT overlapping the previous one's commit); default 2.
	FlushesInFlight   int
	MaxBufferedBytes  int64 // unflushed bytes ceiling; Append waits above it; default 256 MiB
	LocalSegmentBytes int64 // local segment file size before a new one; default 64 MiB
	HotTierBytes      int64 // local segment bytes kept per partition before eviction; default 256 MiB
	CacheBytes        int64 // local disk budget for runs read from the object store; default 1 GiB
	DecodedCacheBytes int64 // memory budget for recently decompressed spans; default 64 MiB
	// MaintenanceInterval is how often partitions are checked for rolling
	// and retention; default 2s.
	MaintenanceInterval time.Duration
	// SweepInterval is how often unreferenced objects are looked for;
	// default 1m. SweepGrace is how old an unreferenced object must be
	// before it is deleted; default 10m.
	SweepInterval time.Duration
	SweepGrace    time.Duration
	// ProducerIDExpiration is how long an idempotent producer may be idle
	// before a partition forgets it (Kafka's producer.id.expiration.ms);
	// default 24h.
	ProducerIDExpiration time.Duration
	// CompactKeys bounds the keys one compaction pass holds in memory (about
	// 50 bytes each, as Kafka's dedupe buffer); default 1M.
	CompactKeys int
}

func (c *Config) setDefaults() {
	if c.FlushInterval <= 0 {
		c.FlushInterval = 25 * time.Millisecond
	}
	if c.FlushBytes <= 0 {
		c.FlushBytes = 8 << 20
	}
	if c.FlushesInFlight <= 0 {
		c.FlushesInFlight = 2
	}
	if c.MaxBufferedBytes <= 0 {
		c.MaxBufferedBytes = 256 << 20
	}
	if c.LocalSegmentBytes <= 0 {
		c.LocalSegmentBytes = 64 << 20
	}
	if c.HotTierBytes <= 0 {
		c.HotTierBytes = 256 << 20
	}
	if c.CacheBytes == 0 {
		c.CacheBytes = 1 << 30
	}
	if c.DecodedCacheBytes <= 0 {
		c.DecodedCacheBytes = 64 << 20
	}
	if c.MaintenanceInterval <= 0 {
		c.MaintenanceInterval = 2 * time.Second
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = time.Minute
	}
	if c.SweepGrace <= 0 {
		c.SweepGrace = 10 * time.Minute
	}
	if c.ProducerIDExpiration <= 0 {
		c.ProducerIDExpiration = 24 * time.Hour
	}
}

// Tier owns this node's partitions: their local segments, the flusher that
// makes them durable, and reads from either tier.
type Tier struct {
	cfg     Config
	bucket  objstore.Bucket
	meta    *metadata.Store
	logger  *slog.Logger
	metrics *metrics

	mu      sync.Mutex
	parts   map[metadata.TP]*Partition
	opening map[metadata.TP]*openCall
	// handoffs holds the partitions being handed off (handoff.go).
	handoffs  map[*Partition]bool
	handoffWG sync.WaitGroup
	closed    bool

	buf   buffer // unflushed bytes, for backpressure and early flushes
	cache *chunkCache
	// decoded holds recently decompressed spans for fetches that resume
	// in the middle of one.
	decoded *decodedCache
	// readAhead bounds background prefetches of the next run of a cold read.
	readAhead chan struct{}
	wg        sync.WaitGroup // maintenance

	kick    chan struct{} // wakes the flusher before its interval
	closing chan struct{}
	done    chan struct{}
	final   chan context.Context // Close hands the flusher its deadline
}

type openCall struct {
	done chan struct{}
	p    *Partition
	err  error
}

// New starts the flusher. Close stops it.
func New(cfg Config, bucket objstore.Bucket, meta *metadata.Store, logger *slog.Logger, reg prometheus.Registerer) (*Tier, error) {
	cfg.setDefaults()
	if cfg.DataDir == "" {
		return nil, errors.New("tier: DataDir is required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "hot"), 0o755); err != nil {
		return nil, fmt.Errorf("tier: %w", err)
	}
	t := &Tier{
		cfg:      cfg,
		bucket:   bucket,
		meta:     meta,
		logger:   logger,
		metrics:  newMetrics(reg),
		parts:    make(map[metadata.TP]*Partition),
		opening:  make(map[metadata.TP]*openCall),
		handoffs: make(map[*Partition]bool),
		kick:     make(chan struct{}, 1),
		closing:  make(chan struct{}),
		done:     make(chan struct{}),
		final:    make(chan context.Context, 1),
	}
	t.buf.init(cfg.MaxBufferedBytes)
	cache, err := newChunkCache(filepath.Join(cfg.DataDir, "cache"), cfg.CacheBytes, bucket, t.metrics)
	if err != nil {
		return nil, err
	}
	t.cache = cache
	t.decoded = newDecodedCache(cfg.DecodedCacheBytes)
	t.readAhead = make(chan struct{}, readAheadGets)
	go t.runFlusher()
	t.wg.Add(1)
	go t.runMaintenance()
	return t, nil
}

// Close flushes what is pending (bounded by ctx), fails what cannot be
// flushed, and stops the flusher. Appends after Close fail with ErrClosed.
func (t *Tier) Close(ctx context.Context) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		<-t.done
		return nil
	}
	t.closed = true
	t.mu.Unlock()

	t.final <- ctx
	close(t.closing)
	<-t.done
	t.wg.Wait()
	t.handoffWG.Wait()
	t.cache.close()

	t.mu.Lock()
	parts := make([]*Partition, 0, len(t.parts))
	for _, p := range t.parts {
		parts = append(parts, p)
	}
	t.parts = map[metadata.TP]*Partition{}
	t.mu.Unlock()
	for _, p := range parts {
		p.close(ErrClosed, false)
	}
	return nil
}

// Partition returns the open partition tp, opening it (acquiring leadership
// through metadata and loading its durable state) on first use, or again
// after it was fenced.
func (t *Tier) Partition(ctx context.Context, tp metadata.TP) (*Partition, error) {
	if !t.assignedHere(tp) {
		// Another live node should lead it. If we still hold it, hand it
		// over: flush what we accepted, then let go.
		t.mu.Lock()
		p := t.parts[tp]
		t.mu.Unlock()
		if p != nil && !p.isClosed() {
			t.startHandOff(p)
		}
		return nil, ErrNotLeader
	}
	if !t.meta.HoldsLease() {
		// Cut off from etcd (or just woken from a pause) for long enough
		// that another node may lead by now: answer as no leader at all.
		return nil, ErrNotLeader
	}
	t.mu.Lock()
	stale := t.parts[tp]
	t.mu.Unlock()
	if stale != nil && !t.meta.LeaderValid(stale.lead) {
		// Its leader key went with a lost lease: that leadership is over,
		// its state stale. It is opened again under the new lease.
		stale.close(ErrNotLeader, false)
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, ErrClosed
	}
	if p := t.parts[tp]; p != nil {
		if !p.isClosed() {
			t.mu.Unlock()
			return p, nil
		}
		delete(t.parts, tp)
	}
	if c := t.opening[tp]; c != nil {
		t.mu.Unlock()
		select {
		case <-c.done:
			return c.p, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c := &openCall{done: make(chan struct{})}
	t.opening[tp] = c
	t.mu.Unlock()

	c.p, c.err = t.open(ctx, tp)

	t.mu.Lock()
	delete(t.opening, tp)
	if c.err == nil {
		if t.closed {
			c.err = ErrClosed
		} else {
			t.parts[tp] = c.p
		}
	}
	t.mu.Unlock()
	if c.err != nil && c.p != nil {
		c.p.close(c.err, false)
		c.p = nil
	}
	close(c.done)
	return c.p, c.err
}

// OpenAll opens, up to openParallel at a time, the partitions of tps that
// are not open yet, so a request naming many new partitions (a new topic of
// 1,000) waits for about one round of etcd transactions rather than one per
// partition. It reports nothing: the Partition calls that follow return
// each partition or its error.
func (t *Tier) OpenAll(ctx context.Context, tps []metadata.TP) {
	var todo []metadata.TP
	t.mu.Lock()
	for _, tp := range tps {
		if p := t.parts[tp]; p == nil || p.isClosed() {
			todo = append(todo, tp)
		}
	}
	t.mu.Unlock()
	if len(todo) < 2 {
		return
	}
	sem := make(chan struct{}, openParallel)
	var wg sync.WaitGroup
	for _, tp := range todo {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			t.Partition(ctx, tp)
		}()
	}
	wg.Wait()
}

// openParallel bounds the partitions OpenAll opens at once.
const openParallel = 16

// assignedHere reports whether this node should lead tp. With no live nodes
// registered (a tier used on its own, as in tests) every partition is ours.
func (t *Tier) assignedHere(tp metadata.TP) bool {
	n, ok := t.meta.AssignedNode(tp)
	return !ok || n.ID == t.cfg.NodeID
}

// DropTopic closes every open partition of topic (after it was deleted) and
// removes its local files; pending appends fail with ErrNotLeader.
func (t *Tier) DropTopic(topic string) {
	t.mu.Lock()
	var drop []*Partition
	for tp, p := range t.parts {
		if tp.Topic == topic {
			drop = append(drop, p)
			delete(t.parts, tp)
		}
	}
	t.mu.Unlock()
	for _, p := range drop {
		p.close(ErrNotLeader, true)
	}
}

// open acquires leadership of tp and prepares its hot tier.
func (t *Tier) open(ctx context.Context, tp metadata.TP) (*Partition, error) {
	topic, ok := t.meta.Topic(tp.Topic)
	if !ok || tp.Partition < 0 || tp.Partition >= topic.Partitions {
		return nil, ErrUnknownPartition
	}
	t.awaitHandoff(ctx, tp)
	lead, err := t.meta.AcquireLeadership(ctx, tp, t.cfg.NodeID)
	if err != nil {
		if errors.Is(err, metadata.ErrUnknownTopic) {
			return nil, ErrUnknownPartition
		}
		return nil, fmt.Errorf("%w: acquire leadership of %s/%d: %w", ErrStorage, tp.Topic, tp.Partition, err)
	}
	st, err := t.meta.PartitionState(ctx, tp)
	if err != nil {
		return nil, fmt.Errorf("%w: read state of %s/%d: %w", ErrStorage, tp.Topic, tp.Partition, err)
	}
	dir := filepath.Join(t.cfg.DataDir, "hot", fmt.Sprintf("%s-%d", hex.EncodeToString(topic.ID[:]), tp.Partition))
	p, err := openPartition(ctx, t, tp, topic.ID, lead, st, dir)
	if err != nil {
		return nil, err
	}
	t.logger.Info("partition opened", "topic", tp.Topic, "partition", tp.Partition,
		"epoch", lead.Epoch, "high_watermark", st.DurableOffset, "log_start", st.LogStartOffset)
	return p, nil
}

// snapshot returns the open partitions.
func (t *Tier) snapshot() []*Partition {
	t.mu.Lock()
	defer t.mu.Unlock()
	ps := make([]*Partition, 0, len(t.parts))
	for _, p := range t.parts {
		ps = append(ps, p)
	}
	return ps
}

// forget removes p from the open set if it is still the one registered.
func (t *Tier) forget(p *Partition) {
	t.mu.Lock()
	if t.parts[p.tp] == p {
		delete(t.parts, p.tp)
	}
	t.mu.Unlock()
}

// wakeFlusher asks the flusher to run now rather than at its next tick.
func (t *Tier) wakeFlusher() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// buffer counts unflushed bytes and makes appenders wait above the ceiling.
type buffer struct {
	mu    sync.Mutex
	max   int64
	used  int64
	space chan struct{} // closed and replaced whenever bytes are released
}

func (b *buffer) init(max int64) {
	b.max = max
	b.space = make(chan struct{})
}

// acquire reserves n bytes, waiting while the buffer is over its ceiling. A
// single append larger than the ceiling is let through when the buffer is
// empty, so it cannot wait forever.
func (b *buffer) acquire(ctx context.Context, n int64, closing <-chan struct{}) error {
	for {
		b.mu.Lock()
		if b.used+n <= b.max || b.used == 0 {
			b.used += n
			b.mu.Unlock()
			return nil
		}
		ch := b.space
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-closing:
			return ErrClosed
		}
	}
}

func (b *buffer) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	close(b.space)
	b.space = make(chan struct{})
	b.mu.Unlock()
}

func (b *buffer) load() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// PartitionStats is one partition this node leads, as the web console and
// the metrics show it.
type PartitionStats struct {
	TP             metadata.TP
	LeaderEpoch    int32
	LogStartOffset int64
	HighWatermark  int64 // durable: every offset below it is in the object store
	LastStable     int64 // the LSO: the first offset of the oldest open transaction, else HighWatermark
	LogEnd         int64 // the next offset to assign (acks=1 records above HighWatermark included)
	HotBytes       int64 // bytes of the partition's segments on this node's disk
	HotSegments    int
	OpenTxns       int
	Producers      int
}

// Stats returns the partitions this node leads now, sorted by topic and
// partition. It takes each partition's lock briefly, one at a time.
func (t *Tier) Stats() []PartitionStats {
	t.mu.Lock()
	parts := make([]*Partition, 0, len(t.parts))
	for _, p := range t.parts {
		parts = append(parts, p)
	}
	t.mu.Unlock()
	out := make([]PartitionStats, 0, len(parts))
	for _, p := range parts {
		p.mu.Lock()
		if p.err != nil { // closed: no longer led here
			p.mu.Unlock()
			continue
		}
		st := PartitionStats{TP: p.tp, LeaderEpoch: p.lead.Epoch, LogStartOffset: p.logStart,
			HighWatermark: p.hw, LastStable: p.lsoLocked(), LogEnd: p.next,
			HotSegments: len(p.segs), OpenTxns: len(p.txns), Producers: len(p.producers)}
		for _, s := range p.segs {
			st.HotBytes += s.size
		}
		p.mu.Unlock()
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].TP.Topic != out[j].TP.Topic {
			return out[i].TP.Topic < out[j].TP.Topic
		}
		return out[i].TP.Partition < out[j].TP.Partition
	})
	return out
}
