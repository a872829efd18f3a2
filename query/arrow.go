package query

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/segment/kbatch"
)

// Column positions in Schema.
const (
	colTopic = iota
	colPartition
	colOffset
	colTimestamp
	colKey
	colValue
	colHeaders
)

// headerType is the element type of the headers column: Kafka forbids a null
// header key but allows a null value.
var headerType = arrow.StructOf(
	arrow.Field{Name: "key", Type: arrow.BinaryTypes.String},
	arrow.Field{Name: "value", Type: arrow.BinaryTypes.Binary, Nullable: true},
)

// Schema is the default Arrow schema of a record (DESIGN.md "Analytics
// export"). Keys and values are nullable because Kafka's are; a record
// without headers has an empty list, never a null one.
var Schema = arrow.NewSchema([]arrow.Field{
	{Name: "topic", Type: arrow.BinaryTypes.String},
	{Name: "partition", Type: arrow.PrimitiveTypes.Int32},
	{Name: "offset", Type: arrow.PrimitiveTypes.Int64},
	{Name: "timestamp", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}},
	{Name: "key", Type: arrow.BinaryTypes.Binary, Nullable: true},
	{Name: "value", Type: arrow.BinaryTypes.Binary, Nullable: true},
	{Name: "headers", Type: arrow.ListOf(headerType)},
}, nil)

// Batch size defaults.
const (
	// DefaultBatchRows is the row count at which a batch is cut: large
	// enough that per-batch overhead vanishes, small enough that a reader
	// sees progress.
	DefaultBatchRows = 64 << 10
	// DefaultBatchBytes is the payload size at which a batch is cut, so
	// that large values do not make one batch hold gigabytes.
	DefaultBatchBytes = 32 << 20
	// maxBatchBytes caps BatchOptions.MaxBytes so that no binary column
	// of a batch comes near 2 GiB, the limit of its 32-bit offsets.
	maxBatchBytes = 1 << 30
)

// BatchOptions bounds the Arrow record batches a Converter emits.
type BatchOptions struct {
	// MaxRows cuts a batch at this many rows; 0 means DefaultBatchRows.
	MaxRows int
	// MaxBytes cuts a batch once its keys, values and headers take this many
	// bytes; 0 means DefaultBatchBytes, and it is capped at maxBatchBytes
	// (Arrow's binary offsets are 32-bit). A single larger record still
	// makes a batch of its own.
	MaxBytes int
	// Allocator allocates the Arrow buffers; nil means that the Converter
	// reuses the buffers of the batches released for later ones (see
	// recycler), and that the JSON columns' come from the Go allocator.
	Allocator memory.Allocator
	// JSON, when set, adds these columns (from InferJSON) after the
	// default ones, filled from values that are JSON objects.
	JSON []arrow.Field
}

func (o BatchOptions) withDefaults() BatchOptions {
	if o.MaxRows <= 0 {
		o.MaxRows = DefaultBatchRows
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultBatchBytes
	}
	o.MaxBytes = min(o.MaxBytes, maxBatchBytes)
	if o.Allocator == nil {
		o.Allocator = memory.DefaultAllocator
	}
	return o
}

// Converter turns decoded records into Arrow record batches of Schema. It is
// not safe for concurrent use; call Release when done with it.
//
// The default columns are written straight into their Arrow buffers (values
// appended to one data buffer, offsets and validity bits alongside), with no
// builder and no per-record allocation; after the first batch each buffer
// starts at the size the previous batch needed, so a steady stream of
// batches is written without regrowing them.
type Converter struct {
	opts    BatchOptions
	schema  *arrow.Schema
	mem     memory.Allocator
	topic   binaryCol
	part    fixedCol[int32]
	offset  fixedCol[int64]
	ts      fixedCol[int64]
	key     binaryCol
	value   binaryCol
	hdrs    fixedCol[int32] // list offsets into the header columns
	hdrKey  binaryCol
	hdrVal  binaryCol
	json    []array.Builder // one per opts.JSON column
	jsonKey []string
	rows    int
	bytes   int
	nhdr    int // headers appended since the last Flush
}

// NewConverter returns a Converter emitting batches bounded by opts.
func NewConverter(opts BatchOptions) *Converter {
	mem := opts.Allocator
	if mem == nil {
		mem = new(recycler)
	}
	opts = opts.withDefaults()
	c := &Converter{opts: opts, schema: SchemaWithJSON(opts.JSON), mem: mem}
	for _, f := range opts.JSON {
		c.json = append(c.json, array.NewBuilder(opts.Allocator, f.Type))
		c.jsonKey = append(c.jsonKey, jsonKey(f))
	}
	c.start()
	return c
}

// start readies the buffers of a new batch, sized like the last one.
func (c *Converter) start() {
	c.topic.start(c.mem)
	c.part.start(c.mem)
	c.offset.start(c.mem)
	c.ts.start(c.mem)
	c.key.start(c.mem)
	c.value.start(c.mem)
	c.hdrs.start(c.mem)
	c.hdrKey.start(c.mem)
	c.hdrVal.start(c.mem)
	c.hdrs.append(0)
}

// Append adds one record as a row (copying its bytes) and reports whether
// the batch reached its row or byte bound, after which the caller should
// call Flush.
func (c *Converter) Append(topic string, partition int32, rec *kbatch.Record) (full bool) {
	c.topic.appendString(topic)
	c.part.append(partition)
	c.offset.append(rec.Offset)
	c.ts.append(rec.Timestamp)
	c.key.appendNullable(rec.Key)
	c.value.appendNullable(rec.Value)
	n := len(topic) + 4 + 8 + 8 + len(rec.Key) + len(rec.Value)
	for i := range rec.Headers {
		h := &rec.Headers[i]
		c.hdrKey.appendString(h.Key)
		c.hdrVal.appendNullable(h.Value)
		n += len(h.Key) + len(h.Value)
	}
	c.nhdr += len(rec.Headers)
	c.hdrs.append(int32(c.nhdr))
	if len(c.json) > 0 {
		m, _ := decodeJSON(rec.Value)
		for i, jb := range c.json {
			if m == nil {
				jb.AppendNull()
			} else {
				appendJSON(jb, m[c.jsonKey[i]])
			}
		}
	}
	c.rows++
	c.bytes += n
	return c.rows >= c.opts.MaxRows || c.bytes >= c.opts.MaxBytes
}

// Schema is the schema of the batches Flush returns.
func (c *Converter) Schema() *arrow.Schema { return c.schema }

// Rows is the number of rows appended since the last Flush.
func (c *Converter) Rows() int { return c.rows }

// Flush returns the rows appended since the last Flush as one record batch,
// or nil when there are none. The caller must Release the batch; with the
// default allocator its buffers are then reused for later batches, so
// nothing read from it without a copy (String.Value, Binary.Value) may be
// kept beyond that.
func (c *Converter) Flush() arrow.RecordBatch {
	if c.rows == 0 {
		return nil
	}
	n := c.rows
	fields := c.schema.Fields()
	cols := make([]arrow.ArrayData, 0, len(fields))
	cols = append(cols,
		c.topic.data(fields[colTopic].Type, n),
		c.part.data(fields[colPartition].Type, n),
		c.offset.data(fields[colOffset].Type, n),
		c.ts.data(fields[colTimestamp].Type, n),
		c.key.data(fields[colKey].Type, n),
		c.value.data(fields[colValue].Type, n))
	st := newData(headerType, c.nhdr, []*memory.Buffer{nil}, []arrow.ArrayData{
		c.hdrKey.data(headerType.Field(0).Type, c.nhdr),
		c.hdrVal.data(headerType.Field(1).Type, c.nhdr)}, 0)
	cols = append(cols, newData(fields[colHeaders].Type, n, []*memory.Buffer{nil, c.hdrs.take()}, []arrow.ArrayData{st}, 0))
	arrs := make([]arrow.Array, 0, len(fields))
	for _, d := range cols {
		arrs = append(arrs, array.MakeFromData(d))
		d.Release()
	}
	for _, jb := range c.json {
		arrs = append(arrs, jb.NewArray())
	}
	rec := array.NewRecordBatch(c.schema, arrs, int64(n))
	for _, a := range arrs {
		a.Release()
	}
	c.rows, c.bytes, c.nhdr = 0, 0, 0
	c.start()
	return rec
}

// Release frees the buffers of rows not flushed.
func (c *Converter) Release() {
	for _, b := range []*memory.Buffer{c.topic.offsets.buf, c.topic.values.buf, c.topic.valid.buf,
		c.part.buf, c.offset.buf, c.ts.buf,
		c.key.offsets.buf, c.key.values.buf, c.key.valid.buf,
		c.value.offsets.buf, c.value.values.buf, c.value.valid.buf,
		c.hdrs.buf, c.hdrKey.offsets.buf, c.hdrKey.values.buf, c.hdrKey.valid.buf,
		c.hdrVal.offsets.buf, c.hdrVal.values.buf, c.hdrVal.valid.buf} {
		if b != nil {
			b.Release()
		}
	}
	for _, jb := range c.json {
		jb.Release()
	}
	c.json = nil
	*c = Converter{opts: c.opts, schema: c.schema, mem: c.mem}
}

// fixedCol accumulates the values of a fixed-width column (or the offsets
// of a variable-width one) in an allocator buffer.
type fixedCol[T int32 | int64] struct {
	buf  *memory.Buffer
	vals []T // the buffer's memory, len = values appended
	hint int // values the last batch held: the next one starts at this size
}

func (f *fixedCol[T]) start(mem memory.Allocator) {
	f.buf = memory.NewResizableBuffer(mem)
	f.vals = nil
	if f.hint > 0 {
		f.grow(f.hint)
	}
}

// grow makes room for at least n values in all.
func (f *fixedCol[T]) grow(n int) {
	var zero T
	size := int(unsafe.Sizeof(zero))
	n = max(n, cap(f.vals)+cap(f.vals)/2, 64)
	f.buf.Reserve(n * size)
	b := f.buf.Buf()
	f.vals = unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/size)[:len(f.vals)]
}

func (f *fixedCol[T]) append(v T) {
	if len(f.vals) == cap(f.vals) {
		f.grow(len(f.vals) + 1)
	}
	f.vals = append(f.vals, v)
}

// take hands the buffer over, sized to the values appended.
func (f *fixedCol[T]) take() *memory.Buffer {
	var zero T
	b := f.buf
	b.ResizeNoShrink(len(f.vals) * int(unsafe.Sizeof(zero)))
	f.hint = max(len(f.vals), f.hint-f.hint/4)
	f.buf, f.vals = nil, nil
	return b
}

// data is the column as array data of type t (length n) for int columns.
func (f *fixedCol[T]) data(t arrow.DataType, n int) arrow.ArrayData {
	return newData(t, n, []*memory.Buffer{nil, f.take()}, nil, 0)
}

// newData is array.NewData taking over the references to bufs and
// children (NewData adds its own).
func newData(t arrow.DataType, n int, bufs []*memory.Buffer, children []arrow.ArrayData, nulls int) arrow.ArrayData {
	d := array.NewData(t, n, bufs, children, nulls, 0)
	for _, b := range bufs {
		if b != nil {
			b.Release()
		}
	}
	for _, c := range children {
		c.Release()
	}
	return d
}

// byteCol accumulates bytes in an allocator buffer.
type byteCol struct {
	buf  *memory.Buffer
	b    []byte // the buffer's memory, len = bytes appended
	hint int
}

func (c *byteCol) start(mem memory.Allocator) {
	c.buf = memory.NewResizableBuffer(mem)
	c.b = nil
	if c.hint > 0 {
		c.grow(c.hint)
	}
}

func (c *byteCol) grow(n int) {
	n = max(n, cap(c.b)+cap(c.b)/2, 256)
	c.buf.Reserve(n)
	// Not beyond the buffer's length: Reserve copies only that far.
	all := c.buf.Buf()
	c.b = all[:len(c.b):len(all)]
}

func (c *byteCol) take() *memory.Buffer {
	b := c.buf
	b.ResizeNoShrink(len(c.b))
	c.hint = max(len(c.b), c.hint-c.hint/4)
	c.buf, c.b = nil, nil
	return b
}

// binaryCol accumulates a binary or utf8 column: validity bits, offsets and
// the values' bytes.
type binaryCol struct {
	offsets fixedCol[int32]
	values  byteCol
	valid   byteCol // one bit a row, set when not null
	n       int     // rows
	nulls   int
}

func (c *binaryCol) start(mem memory.Allocator) {
	c.offsets.start(mem)
	c.offsets.append(0)
	c.values.start(mem)
	c.valid.start(mem)
	c.n, c.nulls = 0, 0
}

// appendValid records whether the next row is valid.
func (c *binaryCol) appendValid(ok bool) {
	if c.n%8 == 0 {
		if len(c.valid.b) == cap(c.valid.b) {
			c.valid.grow(len(c.valid.b) + 1)
		}
		c.valid.b = append(c.valid.b, 0)
	}
	if ok {
		c.valid.b[c.n/8] |= 1 << (c.n % 8)
	} else {
		c.nulls++
	}
	c.n++
}

// appendString appends v to a column that has no nulls.
func (c *binaryCol) appendString(v string) {
	if len(c.values.b)+len(v) > cap(c.values.b) {
		c.values.grow(len(c.values.b) + len(v))
	}
	c.values.b = append(c.values.b, v...)
	c.offsets.append(int32(len(c.values.b)))
}

// appendNullable appends v, or a null when v is nil.
func (c *binaryCol) appendNullable(v []byte) {
	if len(c.values.b)+len(v) > cap(c.values.b) {
		c.values.grow(len(c.values.b) + len(v))
	}
	c.values.b = append(c.values.b, v...)
	c.offsets.append(int32(len(c.values.b)))
	c.appendValid(v != nil)
}

// data is the column as array data of type t with n rows.
func (c *binaryCol) data(t arrow.DataType, n int) arrow.ArrayData {
	valid := c.valid.take()
	if c.nulls == 0 {
		valid.Release()
		valid = nil
	}
	return newData(t, n, []*memory.Buffer{valid, c.offsets.take(), c.values.take()}, nil, c.nulls)
}

// scanWorkers is how many partitions ScanArrow reads and converts at once,
// each on a goroutine of its own, ahead of the caller's fn: half the
// processors (the caller's writing and the network want the rest), at
// least one and at most four.
func scanWorkers() int { return min(max(runtime.GOMAXPROCS(0)/2, 1), 4) }

// ScanArrow scans each partition of topic in turn (every partition when
// partitions is empty) with rg and calls fn with record batches of Schema:
// all of the first partition's batches in offset order, then the next
// partition's, and so on; a batch never mixes partitions. fn runs on the
// caller's goroutine and must not keep the batch, or anything read from it
// without a copy, beyond the call without retaining it (its buffers are
// reused once it is released). It returns the bounds resolved per
// partition (those of the partitions delivered in full when it fails).
//
// Reading and converting run ahead of fn on scanWorkers goroutines (one
// on two processors), each taking the next partition in order, so that
// the caller's writing overlaps them; each holds at most one batch being
// filled and one waiting for fn, so at most 2*scanWorkers()+1 batches
// exist at once.
func (r *Reader) ScanArrow(ctx context.Context, topic string, partitions []int32, rg Range, opts BatchOptions, fn func(arrow.RecordBatch) error) ([]Bounds, error) {
	if err := rg.Validate(); err != nil {
		return nil, err
	}
	t, err := r.Topic(topic)
	if err != nil {
		return nil, err
	}
	if len(partitions) == 0 {
		partitions = make([]int32, t.Partitions)
		for i := range partitions {
			partitions[i] = int32(i)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	scans := make([]partScan, len(partitions))
	for i := range scans {
		scans[i].batches = make(chan arrow.RecordBatch, 1)
	}
	var next atomic.Int64 // the next partition to start
	var wg sync.WaitGroup
	defer func() {
		// Stop the workers (those waiting to send see ctx done) and
		// release what they converted that fn did not take, even if fn
		// panicked.
		cancel()
		wg.Wait()
		for i := range scans {
			drain(scans[i].batches)
		}
	}()
	for range min(len(partitions), scanWorkers()) {
		wg.Go(func() {
			c := NewConverter(opts)
			defer c.Release()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(partitions) {
					return
				}
				s := &scans[i]
				s.bounds, s.err = r.scanPartition(ctx, c, topic, partitions[i], rg, s.batches)
				close(s.batches)
				if s.err != nil {
					return
				}
			}
		})
	}
	// Partitions are started in order and each started one is finished
	// (its channel closed) even on error, so reading them in order never
	// waits for one no worker will take.
	var bounds []Bounds
	for i := range scans {
		s := &scans[i]
		for rec := range s.batches {
			if err == nil {
				err = fn(rec)
			}
			rec.Release()
			if err != nil {
				break
			}
		}
		if err == nil {
			err = s.err
		}
		if err != nil {
			break
		}
		bounds = append(bounds, s.bounds)
	}
	return bounds, err
}

// partScan is one partition of a ScanArrow: the batches its worker
// converted, then (once batches is closed) its bounds and error.
type partScan struct {
	batches chan arrow.RecordBatch
	bounds  Bounds
	err     error
}

// drain releases the batches left in ch, without waiting.
func drain(ch chan arrow.RecordBatch) {
	for {
		select {
		case rec, ok := <-ch:
			if !ok {
				return
			}
			rec.Release()
		default:
			return
		}
	}
}

// scanPartition converts partition p of topic into batches sent to out.
func (r *Reader) scanPartition(ctx context.Context, c *Converter, topic string, p int32, rg Range, out chan<- arrow.RecordBatch) (Bounds, error) {
	send := func() error {
		rec := c.Flush()
		if rec == nil {
			return nil
		}
		select {
		case out <- rec:
			return nil
		case <-ctx.Done():
			rec.Release()
			return ctx.Err()
		}
	}
	b, err := r.Scan(ctx, metadata.TP{Topic: topic, Partition: p}, rg, func(rec *kbatch.Record) error {
		if c.Append(topic, p, rec) {
			return send()
		}
		return nil
	})
	if err != nil {
		if rec := c.Flush(); rec != nil {
			rec.Release()
		}
		return b, err
	}
	return b, send()
}
