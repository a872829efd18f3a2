package query

import (
	"context"

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
)

// BatchOptions bounds the Arrow record batches a Converter emits.
type BatchOptions struct {
	// MaxRows cuts a batch at this many rows; 0 means DefaultBatchRows.
	MaxRows int
	// MaxBytes cuts a batch once its keys, values and headers take this many
	// bytes; 0 means DefaultBatchBytes. A single larger record still makes
	// a batch of its own.
	MaxBytes int
	// Allocator allocates the Arrow buffers; nil means the Go allocator.
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
	if o.Allocator == nil {
		o.Allocator = memory.DefaultAllocator
	}
	return o
}

// Converter turns decoded records into Arrow record batches of Schema. It is
// not safe for concurrent use; call Release when done with it.
type Converter struct {
	opts    BatchOptions
	b       *array.RecordBuilder
	topic   *array.StringBuilder
	part    *array.Int32Builder
	offset  *array.Int64Builder
	ts      *array.TimestampBuilder
	key     *array.BinaryBuilder
	value   *array.BinaryBuilder
	headers *array.ListBuilder
	hdr     *array.StructBuilder
	hdrKey  *array.StringBuilder
	hdrVal  *array.BinaryBuilder
	json    []array.Builder // one per opts.JSON column
	jsonKey []string
	rows    int
	bytes   int
}

// NewConverter returns a Converter emitting batches bounded by opts.
func NewConverter(opts BatchOptions) *Converter {
	opts = opts.withDefaults()
	b := array.NewRecordBuilder(opts.Allocator, SchemaWithJSON(opts.JSON))
	c := &Converter{
		opts:    opts,
		b:       b,
		topic:   b.Field(colTopic).(*array.StringBuilder),
		part:    b.Field(colPartition).(*array.Int32Builder),
		offset:  b.Field(colOffset).(*array.Int64Builder),
		ts:      b.Field(colTimestamp).(*array.TimestampBuilder),
		key:     b.Field(colKey).(*array.BinaryBuilder),
		value:   b.Field(colValue).(*array.BinaryBuilder),
		headers: b.Field(colHeaders).(*array.ListBuilder),
	}
	c.hdr = c.headers.ValueBuilder().(*array.StructBuilder)
	c.hdrKey = c.hdr.FieldBuilder(0).(*array.StringBuilder)
	c.hdrVal = c.hdr.FieldBuilder(1).(*array.BinaryBuilder)
	for i, f := range opts.JSON {
		c.json = append(c.json, b.Field(colHeaders+1+i))
		c.jsonKey = append(c.jsonKey, jsonKey(f))
	}
	return c
}

// Append adds one record as a row (copying its bytes) and reports whether
// the batch reached its row or byte bound, after which the caller should
// call Flush.
func (c *Converter) Append(topic string, partition int32, rec *kbatch.Record) (full bool) {
	c.topic.Append(topic)
	c.part.Append(partition)
	c.offset.Append(rec.Offset)
	c.ts.Append(arrow.Timestamp(rec.Timestamp))
	n := len(topic) + 4 + 8 + 8
	if rec.Key == nil {
		c.key.AppendNull()
	} else {
		c.key.Append(rec.Key)
		n += len(rec.Key)
	}
	if rec.Value == nil {
		c.value.AppendNull()
	} else {
		c.value.Append(rec.Value)
		n += len(rec.Value)
	}
	c.headers.Append(true)
	for i := range rec.Headers {
		h := &rec.Headers[i]
		c.hdr.Append(true)
		c.hdrKey.Append(h.Key)
		if h.Value == nil {
			c.hdrVal.AppendNull()
		} else {
			c.hdrVal.Append(h.Value)
		}
		n += len(h.Key) + len(h.Value)
	}
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
func (c *Converter) Schema() *arrow.Schema { return c.b.Schema() }

// Rows is the number of rows appended since the last Flush.
func (c *Converter) Rows() int { return c.rows }

// Flush returns the rows appended since the last Flush as one record batch,
// or nil when there are none. The caller must Release the batch.
func (c *Converter) Flush() arrow.RecordBatch {
	if c.rows == 0 {
		return nil
	}
	c.rows, c.bytes = 0, 0
	return c.b.NewRecordBatch()
}

// Release frees the builders' buffers.
func (c *Converter) Release() { c.b.Release() }

// ScanArrow scans each partition of topic in turn (every partition when
// partitions is empty) with rg and calls fn with record batches of Schema;
// a batch never mixes partitions. fn must not keep the batch beyond the call
// without retaining it. It returns the bounds resolved per partition.
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
	c := NewConverter(opts)
	defer c.Release()
	emit := func() error {
		rec := c.Flush()
		if rec == nil {
			return nil
		}
		defer rec.Release()
		return fn(rec)
	}
	var bounds []Bounds
	for _, p := range partitions {
		b, err := r.Scan(ctx, metadata.TP{Topic: topic, Partition: p}, rg, func(rec *kbatch.Record) error {
			if c.Append(topic, p, rec) {
				return emit()
			}
			return nil
		})
		if err != nil {
			return bounds, err
		}
		bounds = append(bounds, b)
		if err := emit(); err != nil {
			return bounds, err
		}
	}
	return bounds, nil
}
