package query

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// writeTimeout bounds how long one batch may take to reach a client.
const writeTimeout = 2 * time.Minute

// ArrowStreamType is the media type of an Arrow IPC stream.
const ArrowStreamType = "application/vnd.apache.arrow.stream"

// httpHandler serves topics as Arrow IPC streams.
type httpHandler struct {
	r      *Reader
	logger *slog.Logger
	mux    *http.ServeMux
}

// NewHTTPHandler returns the handler of
//
//	GET /v1/topics/{topic}/arrow?partition=N&from=OFFSET&to=OFFSET&start_time=T&end_time=T
//
// which answers with an Arrow IPC stream (ArrowStreamType) of Schema: the
// selected records of each partition in turn (in the order listed), in
// offset order, all partitions when partition is omitted (it also takes a
// comma-separated list); GET /v1/topics/{topic}/parquet answers the same
// query as a Parquet file. decode=json adds typed columns inferred from
// JSON values (InferJSON). Times are RFC 3339 or milliseconds since the
// epoch; batch_rows caps the rows per batch. Bad parameters are 400 and an unknown topic or
// partition 404, each with a plain-text message. A failure after the stream
// began aborts the connection, so a client sees a truncated stream rather
// than a short one that looks complete. Mount it at "/v1/".
func NewHTTPHandler(r *Reader, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &httpHandler{r: r, logger: logger, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /v1/topics/{topic}/arrow", h.serveArrow)
	h.mux.HandleFunc("GET /v1/topics/{topic}/parquet", h.serveParquet)
	h.mux.HandleFunc("GET /v1/topics/{topic}/compaction", h.serveCompaction)
	return h
}

func (h *httpHandler) ServeHTTP(w http.ResponseWriter, req *http.Request) { h.mux.ServeHTTP(w, req) }

// httpStatus maps a read error to the status a client should see.
func httpStatus(err error) int {
	switch {
	case errors.Is(err, ErrInvalidRange):
		return http.StatusBadRequest
	case errors.Is(err, ErrUnknownTopic), errors.Is(err, ErrUnknownPartition):
		return http.StatusNotFound
	case errors.Is(err, ErrIndexBehind):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

func (h *httpHandler) serveArrow(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	topic := req.PathValue("topic")
	q, opts, ok := h.prepare(w, req)
	if !ok {
		return
	}
	schema := SchemaWithJSON(opts.JSON)

	// The status is sent with the first batch, so an error before any data
	// (a partition's state unreadable, say) still gets a proper status.
	var iw *ipc.Writer
	rc := http.NewResponseController(w)
	begin := func() {
		w.Header().Set("Content-Type", ArrowStreamType)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		iw = ipc.NewWriter(w, ipc.WithSchema(schema))
	}
	var n int64
	_, err := h.r.ScanArrow(req.Context(), q.Topic, q.Partitions, q.Range, opts, func(rec arrow.RecordBatch) error {
		if iw == nil {
			begin()
		}
		// A client that stops reading must not pin a scan forever.
		rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if err := iw.Write(rec); err != nil {
			return fmt.Errorf("query: write to client: %w", err)
		}
		n += rec.NumRows()
		rc.Flush()
		return nil
	})
	if err != nil {
		if iw == nil && req.Context().Err() == nil {
			h.logger.Warn("query: arrow read failed", "topic", topic, "err", err)
			http.Error(w, err.Error(), httpStatus(err))
			return
		}
		h.logger.Warn("query: arrow stream aborted", "topic", topic, "rows", n, "err", err)
		panic(http.ErrAbortHandler)
	}
	if iw == nil {
		begin()
	}
	if err := iw.Close(); err != nil {
		h.logger.Debug("query: arrow stream close", "topic", topic, "err", err)
	}
	h.logger.Debug("query: arrow stream served", "topic", topic, "partitions", q.Partitions, "rows", n, "took", time.Since(start))
}

// serveParquet answers the same query as serveArrow with a Parquet file
// (ParquetWriter: zstd, row groups of at most ParquetRowGroupRows rows and
// ParquetRowGroupBytes bytes of Arrow data, so memory is bounded by a row
// group, not by the topic). Parquet's footer comes last: an error after the
// first row group was sent breaks the download off, and the client sees a
// truncated file, not a valid one.
func (h *httpHandler) serveParquet(w http.ResponseWriter, req *http.Request) {
	topic := req.PathValue("topic")
	q, opts, ok := h.prepare(w, req)
	if !ok {
		return
	}
	// The writer holds a row group of batches, so recycling their buffers
	// would save little and keep another batch's worth (and size classes'
	// slack) alive: plain Go memory here.
	opts.Allocator = memory.DefaultAllocator
	schema := SchemaWithJSON(opts.JSON)
	var pw *ParquetWriter
	rc := http.NewResponseController(w)
	begin := func() error {
		w.Header().Set("Content-Type", "application/vnd.apache.parquet")
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", topic+".parquet"))
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		var err error
		pw, err = NewParquetWriter(w, schema)
		return err
	}
	var n int64
	_, err := h.r.ScanArrow(req.Context(), q.Topic, q.Partitions, q.Range, opts, func(rec arrow.RecordBatch) error {
		if pw == nil {
			if err := begin(); err != nil {
				return err
			}
		}
		rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		n += rec.NumRows()
		return pw.Write(rec, 0)
	})
	if err == nil && pw == nil {
		err = begin()
	}
	if err == nil {
		rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		err = pw.Close()
	}
	if err != nil {
		if pw == nil && req.Context().Err() == nil {
			h.logger.Warn("query: parquet read failed", "topic", topic, "err", err)
			http.Error(w, err.Error(), httpStatus(err))
			return
		}
		h.logger.Warn("query: parquet download aborted", "topic", topic, "rows", n, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// prepare parses and checks an export request (the topic, its partitions
// and range, batch_rows, decode) and, for decode=json, infers the JSON
// columns from a sample. On a bad request it answers the error and returns
// false.
func (h *httpHandler) prepare(w http.ResponseWriter, req *http.Request) (Request, BatchOptions, bool) {
	q, err := ParseQuery(req.PathValue("topic"), req.URL.Query())
	if err == nil {
		err = h.r.checkRequest(q)
	}
	rows := 0
	if err == nil {
		rows, err = batchRows(req.URL.Query())
	}
	if err != nil {
		http.Error(w, err.Error(), httpStatus(err))
		return Request{}, BatchOptions{}, false
	}
	opts := BatchOptions{MaxRows: rows}
	if q.Decode == "json" {
		sample, err := h.r.SampleValues(req.Context(), q.Topic, q.Partitions, q.Range, DefaultJSONSample)
		if err != nil {
			http.Error(w, err.Error(), httpStatus(err))
			return Request{}, BatchOptions{}, false
		}
		opts.JSON = InferJSON(sample)
	}
	return q, opts, true
}

// checkRequest reports an unknown topic or partition before any data is
// read.
func (r *Reader) checkRequest(q Request) error {
	t, err := r.Topic(q.Topic)
	if err != nil {
		return err
	}
	seen := map[int32]bool{}
	for _, p := range q.Partitions {
		if p < 0 || p >= t.Partitions {
			return fmt.Errorf("%w: topic %q has %d partitions, no partition %d", ErrUnknownPartition, q.Topic, t.Partitions, p)
		}
		if seen[p] {
			return fmt.Errorf("%w: partition %d listed twice", ErrInvalidRange, p)
		}
		seen[p] = true
	}
	return nil
}
