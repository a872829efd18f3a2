package query

import (
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Parquet row groups are cut before they would pass ParquetRowGroupRows
// rows or ParquetRowGroupBytes bytes of Arrow data, whichever comes first:
// big enough for good compression and column statistics (with 100-byte
// values, some 450,000 rows), small enough that an export's memory is
// bounded by one row group, not by the topic. A single batch larger than
// the byte bound makes a row group of its own.
const (
	ParquetRowGroupRows  = 1 << 20
	ParquetRowGroupBytes = 64 << 20
)

// parquetProps are the Parquet writer settings of every export:
//
//   - zstd at its fastest level: record values are often already
//     compressed or random, where a stronger level only burns CPU, and
//     level 1 still shrinks text well;
//   - no dictionary encoding: offsets and timestamps never repeat, values
//     rarely do, and for the topic and partition columns, which do, zstd
//     over plain values does as well without a hash lookup a value;
//   - DELTA_BINARY_PACKED for offset and timestamp, which ascend: about a
//     byte a row before compression;
//   - statistics on every column but value, whose min and max say nothing
//     about a blob.
func parquetProps(maxRows int64) *parquet.WriterProperties {
	return parquet.NewWriterProperties(
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithCompressionLevel(1),
		parquet.WithDictionaryDefault(false),
		parquet.WithEncodingFor("offset", parquet.Encodings.DeltaBinaryPacked),
		parquet.WithEncodingFor("timestamp", parquet.Encodings.DeltaBinaryPacked),
		parquet.WithStatsFor("value", false),
		parquet.WithMaxRowGroupLength(maxRows),
	)
}

// ParquetWriter writes Arrow record batches as a zstd-compressed Parquet
// file, in row groups bounded by ParquetRowGroupRows and
// ParquetRowGroupBytes. It keeps the batches of the row group being filled
// (retained, not copied) and writes each full row group straight to w, one
// column after the other, so it holds one row group of Arrow data at most
// and never a second, encoded copy of it. `strata export` and the HTTP
// Parquet endpoint both use it.
type ParquetWriter struct {
	w       *pqarrow.FileWriter
	schema  *arrow.Schema
	pending []arrow.RecordBatch // the row group being filled
	rows    int64
	bytes   int64
	failed  error
	// maxRows and maxBytes bound a row group: ParquetRowGroupRows and
	// ParquetRowGroupBytes but in tests.
	maxRows  int64
	maxBytes int64
}

// NewParquetWriter starts a Parquet file with schema on w. Close finishes
// the file; it does not close w.
func NewParquetWriter(w io.Writer, schema *arrow.Schema) (*ParquetWriter, error) {
	return newParquetWriter(w, schema, ParquetRowGroupRows, ParquetRowGroupBytes)
}

func newParquetWriter(w io.Writer, schema *arrow.Schema, maxRows, maxBytes int64) (*ParquetWriter, error) {
	// The struct hides any Close method of w from pqarrow, which would
	// call it.
	fw, err := pqarrow.NewFileWriter(schema, struct{ io.Writer }{w}, parquetProps(maxRows),
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return nil, err
	}
	return &ParquetWriter{w: fw, schema: schema, maxRows: maxRows, maxBytes: maxBytes}, nil
}

// Write adds rec to the current row group, first writing that row group out
// if rec would take it past a bound. size is rec's size as the caller
// measures it (bytes on the wire, say); 0 measures its buffers. The writer
// retains rec until its row group is written: the caller may release it at
// once.
func (p *ParquetWriter) Write(rec arrow.RecordBatch, size int64) error {
	if p.failed != nil {
		return p.failed
	}
	if !rec.Schema().Equal(p.schema) {
		return fmt.Errorf("query: parquet: batch schema\n%s\ndiffers from the file's\n%s", rec.Schema(), p.schema)
	}
	if size <= 0 {
		size = recordBytes(rec)
	}
	n := rec.NumRows()
	if len(p.pending) > 0 && (p.rows+n > p.maxRows || p.bytes+size > p.maxBytes) {
		if err := p.flush(); err != nil {
			return err
		}
	}
	rec.Retain()
	p.pending = append(p.pending, rec)
	p.rows += n
	p.bytes += size
	return nil
}

// flush writes the pending batches as one row group (more only when they
// hold more than ParquetRowGroupRows rows, which a single batch can) and
// releases them.
func (p *ParquetWriter) flush() error {
	if len(p.pending) == 0 {
		return nil
	}
	tbl := array.NewTableFromRecords(p.schema, p.pending)
	err := p.w.WriteTable(tbl, p.maxRows)
	tbl.Release()
	for i, rec := range p.pending {
		rec.Release()
		p.pending[i] = nil
	}
	p.pending, p.rows, p.bytes = p.pending[:0], 0, 0
	if err != nil {
		p.failed = err
	}
	return err
}

// Close writes the last row group and the footer. After an error the file
// is incomplete and Close returns that error, but it still releases what
// the writer holds.
func (p *ParquetWriter) Close() error {
	err := p.flush()
	if err == nil {
		err = p.failed
	}
	if cerr := p.w.Close(); err == nil {
		err = cerr
	}
	return err
}

// recordBytes sums the lengths of rec's buffers.
func recordBytes(rec arrow.RecordBatch) int64 {
	var n int64
	var walk func(d arrow.ArrayData)
	walk = func(d arrow.ArrayData) {
		for _, b := range d.Buffers() {
			if b != nil {
				n += int64(b.Len())
			}
		}
		for _, c := range d.Children() {
			walk(c)
		}
	}
	for _, col := range rec.Columns() {
		walk(col.Data())
	}
	return n
}
