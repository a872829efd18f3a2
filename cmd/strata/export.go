package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/strata-io/strata/query"
)

// exportOptions is one `strata export` invocation.
type exportOptions struct {
	topic     string
	partition string
	from, to  string
	startTime string
	endTime   string
	format    string // "arrow" or "parquet"
	out       string
	httpURL   string
	decode    string // "" or "json"
}

func exportCmd(args []string, stdout, stderr io.Writer) error {
	var o exportOptions
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: strata export --topic T --out FILE [flags]

Reads a topic as a table from a running node (its Arrow endpoint on --http)
and writes an Arrow IPC file or a Parquet file (zstd). Columns: topic,
partition, offset, timestamp, key, value, headers.

`)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.topic, "topic", "", "topic to export (required)")
	fs.StringVar(&o.partition, "partition", "", "partition number or comma-separated list (default: all)")
	fs.StringVar(&o.from, "from", "", "first offset, inclusive (default: the log start)")
	fs.StringVar(&o.to, "to", "", "end offset, exclusive (default: the high watermark when the export starts)")
	fs.StringVar(&o.startTime, "start-time", "", "earliest record timestamp, inclusive: RFC 3339 or ms since the epoch")
	fs.StringVar(&o.endTime, "end-time", "", "end record timestamp, exclusive: RFC 3339 or ms since the epoch")
	fs.StringVar(&o.format, "format", "", "arrow or parquet (default: from the --out extension)")
	fs.StringVar(&o.out, "out", "", "file to write (required)")
	fs.StringVar(&o.decode, "decode", "", "json: add typed columns inferred from JSON object values")
	fs.StringVar(&o.httpURL, "http", "http://127.0.0.1:9644", "the node's HTTP address (its --http-addr)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("export: unexpected argument %q", fs.Arg(0))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return runExport(ctx, o, stderr)
}

// check validates the options and fills the format from the file name.
func (o *exportOptions) check() error {
	if o.topic == "" {
		return errors.New("export: --topic is required")
	}
	if o.out == "" {
		return errors.New("export: --out is required")
	}
	if o.format == "" {
		switch strings.ToLower(filepath.Ext(o.out)) {
		case ".parquet", ".pq":
			o.format = "parquet"
		case ".arrow", ".arrows", ".ipc", ".feather":
			o.format = "arrow"
		default:
			return fmt.Errorf("export: cannot tell the format from %q: give --format arrow or --format parquet", o.out)
		}
	}
	o.format = strings.ToLower(o.format)
	if o.format != "arrow" && o.format != "parquet" {
		return fmt.Errorf("export: --format %q: want arrow or parquet", o.format)
	}
	return nil
}

// requestURL builds the node's Arrow endpoint URL for o.
func (o *exportOptions) requestURL() (string, error) {
	base := strings.TrimRight(o.httpURL, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("export: --http %q is not an http(s) URL like http://127.0.0.1:9644", o.httpURL)
	}
	u = u.JoinPath("v1", "topics", o.topic, "arrow")
	q := url.Values{}
	for k, v := range map[string]string{"partition": o.partition, "from": o.from, "to": o.to, "start_time": o.startTime, "end_time": o.endTime, "decode": o.decode} {
		if v != "" {
			q.Set(k, v)
		}
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// recordWriter is the file format side of an export.
// parquetFile is a ParquetWriter as a recordWriter.
type parquetFile struct{ *query.ParquetWriter }

func (p parquetFile) Write(rec arrow.RecordBatch) error { return p.ParquetWriter.Write(rec, 0) }

type recordWriter interface {
	Write(rec arrow.RecordBatch) error
	Close() error
}

// countingReader counts the bytes read through it, for progress.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// progress prints rows and megabytes to stderr: in place on a terminal,
// a line every few seconds otherwise (logs, CI).
type progress struct {
	w        io.Writer
	tty      bool
	start    time.Time
	last     time.Time
	interval time.Duration
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, start: time.Now(), interval: 2 * time.Second}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty, p.interval = true, 200*time.Millisecond
		}
	}
	p.last = p.start
	return p
}

func (p *progress) line(rows, bytes int64) string {
	secs := time.Since(p.start).Seconds()
	return fmt.Sprintf("%d rows, %.1f MB read in %.1fs", rows, float64(bytes)/1e6, secs)
}

func (p *progress) update(rows, bytes int64) {
	if time.Since(p.last) < p.interval {
		return
	}
	p.last = time.Now()
	if p.tty {
		fmt.Fprintf(p.w, "\rexporting: %s", p.line(rows, bytes))
	} else {
		fmt.Fprintf(p.w, "exporting: %s\n", p.line(rows, bytes))
	}
}

func (p *progress) done(rows, bytes int64, out string, size int64) {
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintf(p.w, "exported %s to %s (%.1f MB)\n", p.line(rows, bytes), out, float64(size)/1e6)
}

// runExport fetches the topic's Arrow stream and writes o.out. The file
// appears only when the export completed: it is written under a temporary
// name and renamed, so a failed export never leaves a plausible-looking
// partial file behind.
func runExport(ctx context.Context, o exportOptions, stderr io.Writer) (err error) {
	if err := o.check(); err != nil {
		return err
	}
	u, err := o.requestURL()
	if err != nil {
		return err
	}
	// The output is made first so that a folder that does not exist is
	// reported before the node does any work.
	tmp, err := os.CreateTemp(filepath.Dir(o.out), "."+filepath.Base(o.out)+".tmp-*")
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("export: cannot create %s: %w", o.out, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	req.Header.Set("Accept", query.ArrowStreamType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("export: interrupted")
		}
		return fmt.Errorf("export: cannot reach the node at %s (is `strata serve` running there? --http must point at its --http-addr): %w", o.httpURL, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		msg := strings.TrimSpace(string(body))
		switch resp.StatusCode {
		case http.StatusNotFound:
			if msg == "" || strings.HasPrefix(msg, "404 page not found") {
				return fmt.Errorf("export: %s has no Arrow endpoint (is it a Strata node of this version?)", o.httpURL)
			}
			return fmt.Errorf("export: not found: %s", msg)
		case http.StatusBadRequest:
			return fmt.Errorf("export: the node refused the request: %s", msg)
		default:
			return fmt.Errorf("export: the node answered %s: %s", resp.Status, msg)
		}
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, query.ArrowStreamType) {
		return fmt.Errorf("export: %s answered with %q, not an Arrow stream", o.httpURL, ct)
	}

	body := &countingReader{r: resp.Body}
	rd, err := ipc.NewReader(body)
	if err != nil {
		return fmt.Errorf("export: reading the Arrow stream: %w", err)
	}
	defer rd.Release()

	var (
		fw   recordWriter
		pq   *query.ParquetWriter
		rows int64
	)
	switch o.format {
	case "arrow":
		w, err := ipc.NewFileWriter(tmp, ipc.WithSchema(rd.Schema()))
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		fw = w
	case "parquet":
		// The writer does not close the file: the Sync below comes first.
		w, err := query.NewParquetWriter(tmp, rd.Schema())
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		pq = w
		fw = parquetFile{w}
	}
	prog := newProgress(stderr)
	lastBytes := int64(0)
	for rd.Next() {
		rec := rd.RecordBatch()
		if pq != nil {
			err = pq.Write(rec, body.n-lastBytes)
		} else {
			err = fw.Write(rec)
		}
		if err != nil {
			fw.Close()
			return fmt.Errorf("export: writing %s: %w", o.out, err)
		}
		lastBytes = body.n
		rows += rec.NumRows()
		prog.update(rows, body.n)
	}
	if err = rd.Err(); err != nil {
		fw.Close()
		if ctx.Err() != nil {
			return fmt.Errorf("export: interrupted after %d rows", rows)
		}
		return fmt.Errorf("export: the stream from the node broke off after %d rows (the node log says why): %w", rows, err)
	}
	if err = fw.Close(); err != nil {
		return fmt.Errorf("export: finishing %s: %w", o.out, err)
	}
	// CreateTemp makes the file private; an export is an ordinary file.
	if err = tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err = os.Rename(tmp.Name(), o.out); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	var size int64
	if st, serr := os.Stat(o.out); serr == nil {
		size = st.Size()
	}
	prog.done(rows, body.n, o.out, size)
	return nil
}

// unwrapURLError drops net/http's `Get "url": ` prefix, which repeats what
// the message already says.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
