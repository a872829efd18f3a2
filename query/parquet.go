package query

import (
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Parquet row groups are cut at this many rows or this many bytes of Arrow
// data, whichever comes first: big enough for good compression and column
// statistics, small enough that the buffered row group fits in memory. An
// export's memory is bounded by one row group, not by the topic.
const (
	ParquetRowGroupRows  = 1 << 20
	ParquetRowGroupBytes = 128 << 20
)

// ParquetWriter writes Arrow record batches as a zstd-compressed Parquet
// file with buffered row groups cut by rows and bytes. `strata export` and
// the HTTP Parquet endpoint both use it.
type ParquetWriter struct {
	w       *pqarrow.FileWriter
	rgBytes int64
}

// NewParquetWriter starts a Parquet file with schema on w. Close finishes
// the file; it does not close w.
func NewParquetWriter(w io.Writer, schema *arrow.Schema) (*ParquetWriter, error) {
	// The struct hides any Close method of w from pqarrow, which would
	// call it.
	fw, err := pqarrow.NewFileWriter(schema, struct{ io.Writer }{w},
		parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd), parquet.WithMaxRowGroupLength(ParquetRowGroupRows)),
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return nil, err
	}
	return &ParquetWriter{w: fw}, nil
}

// Write adds rec to the current row group. size is rec's size as the
// caller measures it (bytes on the wire, say); 0 measures its buffers.
func (p *ParquetWriter) Write(rec arrow.RecordBatch, size int64) error {
	if size <= 0 {
		size = recordBytes(rec)
	}
	if p.rgBytes >= ParquetRowGroupBytes {
		if err := p.w.NewBufferedRowGroupChecked(); err != nil {
			return err
		}
		p.rgBytes = 0
	}
	p.rgBytes += size
	return p.w.WriteBuffered(rec)
}

// Close writes the last row group and the footer.
func (p *ParquetWriter) Close() error { return p.w.Close() }

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
