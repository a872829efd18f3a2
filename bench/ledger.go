package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// ErrVerify is returned (wrapped, with the counts) when a consume pass did
// not see every acknowledged record exactly once, or a produce lost one.
var ErrVerify = errors.New("bench: exactly-once check failed")

// MinRecordSize is the smallest record value: the record id takes 8 bytes.
const MinRecordSize = 8

// poolBytes is the size of the random pool values are cut from. Random
// bytes do not compress, so neither the client's snappy nor the node's zstd
// makes the benchmark look better than real, incompressible data would.
const poolBytes = 4 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Ledger is the ground truth of one run. Record id i (0 <= i < Capacity) has
// a value made from i alone; a producer stores where the broker put it and
// its CRC, so a consumer can check each record it reads against it.
//
// The per-id slots are written from the producers' promise callbacks (each
// id by exactly one callback) and read by consumers only after Produce has
// returned, which orders the writes before the reads.
type Ledger struct {
	size int
	pool []byte

	part []int32
	off  []int64
	crc  []uint32
	lat  []int64 // acks=all latency of each acked record, ns; < 0 = left out of the stats

	issued atomic.Int64 // ids handed to Produce (a prefix of 0..Capacity-1)
	acked  atomic.Int64
	failed atomic.Int64
	sum    atomic.Uint64 // Σ crc of acked records

	errMu    sync.Mutex
	firstErr error
}

// NewLedger returns a ledger for up to records records of size bytes each
// (size >= MinRecordSize). seed makes values differ between runs.
func NewLedger(records, size int, seed uint64) (*Ledger, error) {
	if records <= 0 {
		return nil, fmt.Errorf("bench: records must be positive, got %d", records)
	}
	if size < MinRecordSize {
		return nil, fmt.Errorf("bench: record size must be at least %d, got %d", MinRecordSize, size)
	}
	l := &Ledger{
		size: size,
		pool: make([]byte, poolBytes+size),
		part: make([]int32, records),
		off:  make([]int64, records),
		crc:  make([]uint32, records),
		lat:  make([]int64, records),
	}
	rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24),
		byte(seed >> 32), byte(seed >> 40), byte(seed >> 48), byte(seed >> 56)})
	rng.Read(l.pool)
	for i := range l.part {
		l.part[i] = -1
	}
	return l, nil
}

// Capacity is the number of ids the ledger has room for.
func (l *Ledger) Capacity() int { return len(l.part) }

// RecordSize is the value size of every record.
func (l *Ledger) RecordSize() int { return l.size }

// Issued is the number of records handed to the client so far.
func (l *Ledger) Issued() int64 { return l.issued.Load() }

// Acked is the number of records the broker acknowledged.
func (l *Ledger) Acked() int64 { return l.acked.Load() }

// Failed is the number of records whose produce failed.
func (l *Ledger) Failed() int64 { return l.failed.Load() }

// Checksum is the sum of the CRC-32C of every acknowledged record's value;
// a consume pass that saw each of them exactly once arrives at the same sum.
func (l *Ledger) Checksum() uint64 { return l.sum.Load() }

// value returns a fresh buffer with id's value: the id, then bytes of the
// pool at an offset derived from the id.
func (l *Ledger) value(id int64) []byte {
	v := make([]byte, l.size)
	binary.BigEndian.PutUint64(v, uint64(id))
	start := int((uint64(id) * 7919) % poolBytes)
	copy(v[8:], l.pool[start:start+l.size-8])
	return v
}

// issue reserves id for production and returns its value.
func (l *Ledger) issue(id int64) []byte {
	v := l.value(id)
	l.crc[id] = crc32.Checksum(v, castagnoli)
	l.issued.Add(1)
	return v
}

// ack records the outcome of id's produce.
func (l *Ledger) ack(id int64, partition int32, offset int64, latency time.Duration, err error) {
	if err != nil {
		l.failed.Add(1)
		l.errMu.Lock()
		if l.firstErr == nil {
			l.firstErr = fmt.Errorf("record %d: %w", id, err)
		}
		l.errMu.Unlock()
		return
	}
	l.part[id], l.off[id], l.lat[id] = partition, offset, int64(latency)
	l.sum.Add(uint64(l.crc[id]))
	l.acked.Add(1)
}

// ProduceErr reports a produce that did not acknowledge every issued record:
// the outcome of a failed acks=all produce is unknown, so no consume pass
// could be checked exactly.
func (l *Ledger) ProduceErr() error {
	issued, acked, failed := l.Issued(), l.Acked(), l.Failed()
	if failed == 0 && acked == issued {
		return nil
	}
	l.errMu.Lock()
	first := l.firstErr
	l.errMu.Unlock()
	return fmt.Errorf("%w: produce: %d issued, %d acked, %d failed (first: %v)", ErrVerify, issued, acked, failed, first)
}

// latencies returns the acks=all latencies of the acked records, sorted,
// without those left out as warm-up.
func (l *Ledger) latencies() []int64 {
	n := l.Issued()
	out := make([]int64, 0, n)
	for id := int64(0); id < n; id++ {
		if l.part[id] >= 0 && l.lat[id] >= 0 {
			out = append(out, l.lat[id])
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// quantile returns the q-quantile (0..1) of sorted ns values, nearest rank.
func quantile(sorted []int64, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	i = min(max(i, 0), len(sorted)-1)
	return time.Duration(sorted[i])
}

// partitionEnds returns, per partition, one past the highest acked offset:
// the high watermark a consumer must see when the log holds exactly the
// acked records.
func (l *Ledger) partitionEnds() map[int32]int64 {
	ends := make(map[int32]int64)
	n := l.Issued()
	for id := int64(0); id < n; id++ {
		if p := l.part[id]; p >= 0 && l.off[id]+1 > ends[p] {
			ends[p] = l.off[id] + 1
		}
	}
	return ends
}

// Check verifies one consume pass against a ledger. It is used from one
// goroutine (the consumer's poll loop).
type Check struct {
	l    *Ledger
	seen []uint64 // bitset over ids

	unique    int64
	dups      int64
	corrupt   int64 // wrong size, unknown id, or bytes differ from what was produced
	misplaced int64 // right record at a partition/offset other than where it was acked
	bytes     int64
	sum       uint64
	hw        map[int32]int64 // last high watermark seen per partition
	firstBad  string
}

// NewCheck starts a consume pass over everything l has acknowledged.
func (l *Ledger) NewCheck() *Check {
	return &Check{l: l, seen: make([]uint64, (l.Capacity()+63)/64), hw: make(map[int32]int64)}
}

// Expected is how many distinct records the pass must see.
func (c *Check) Expected() int64 { return c.l.Acked() }

// Unique is how many distinct acked records the pass has seen.
func (c *Check) Unique() int64 { return c.unique }

// Done reports whether every acked record has been seen.
func (c *Check) Done() bool { return c.unique >= c.Expected() }

// Bytes is the value bytes seen so far (duplicates included).
func (c *Check) Bytes() int64 { return c.bytes }

// HighWatermark notes a partition's high watermark from a fetch response.
func (c *Check) HighWatermark(partition int32, hw int64) {
	if hw > c.hw[partition] {
		c.hw[partition] = hw
	}
}

func (c *Check) bad(counter *int64, format string, args ...any) {
	*counter++
	if c.firstBad == "" {
		c.firstBad = fmt.Sprintf(format, args...)
	}
}

// Record checks one consumed record.
func (c *Check) Record(partition int32, offset int64, value []byte) {
	c.bytes += int64(len(value))
	if len(value) != c.l.size {
		c.bad(&c.corrupt, "p%d@%d: value of %d bytes, want %d", partition, offset, len(value), c.l.size)
		return
	}
	id := int64(binary.BigEndian.Uint64(value))
	if id < 0 || id >= c.l.Issued() || c.l.part[id] < 0 {
		c.bad(&c.corrupt, "p%d@%d: id %d was never acked", partition, offset, id)
		return
	}
	crc := crc32.Checksum(value, castagnoli)
	if crc != c.l.crc[id] {
		c.bad(&c.corrupt, "p%d@%d: id %d: bytes differ from what was produced", partition, offset, id)
		return
	}
	if c.l.part[id] != partition || c.l.off[id] != offset {
		c.bad(&c.misplaced, "id %d at p%d@%d, acked at p%d@%d", id, partition, offset, c.l.part[id], c.l.off[id])
		return
	}
	w, bit := id/64, uint64(1)<<(id%64)
	if c.seen[w]&bit != 0 {
		c.bad(&c.dups, "id %d (p%d@%d) seen twice", id, partition, offset)
		return
	}
	c.seen[w] |= bit
	c.unique++
	c.sum += uint64(crc)
}

// Err returns nil when the pass saw every acked record exactly once, with
// the producer's checksum, and the log holds nothing else (each partition's
// high watermark is one past its last acked offset). Otherwise it wraps
// ErrVerify with the counts and the first problem found.
func (c *Check) Err() error {
	want := c.Expected()
	var problems []string
	if c.unique != want {
		problems = append(problems, fmt.Sprintf("%d of %d records seen (%d missing)", c.unique, want, want-c.unique))
	}
	if c.dups > 0 {
		problems = append(problems, fmt.Sprintf("%d duplicates", c.dups))
	}
	if c.corrupt > 0 {
		problems = append(problems, fmt.Sprintf("%d corrupt or unknown", c.corrupt))
	}
	if c.misplaced > 0 {
		problems = append(problems, fmt.Sprintf("%d at the wrong partition/offset", c.misplaced))
	}
	if c.unique == want && c.sum != c.l.Checksum() {
		problems = append(problems, fmt.Sprintf("checksum %d, produced %d", c.sum, c.l.Checksum()))
	}
	ends := c.l.partitionEnds()
	parts := make([]int32, 0, len(c.hw))
	for p := range c.hw {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	for _, p := range parts {
		if hw := c.hw[p]; hw != ends[p] {
			problems = append(problems, fmt.Sprintf("partition %d high watermark %d, acked records end at %d", p, hw, ends[p]))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	if c.firstBad != "" {
		problems = append(problems, "first: "+c.firstBad)
	}
	return fmt.Errorf("%w: %v", ErrVerify, problems)
}
