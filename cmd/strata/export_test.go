package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-io/strata/cmd/node"
	"github.com/strata-io/strata/query"
)

// exportNode starts a real node with HTTP on an ephemeral loopback port.
func exportNode(t *testing.T) *node.Node {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.KafkaAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.FlushInterval = 10 * time.Millisecond
	cfg.DefaultPartitions = 3
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n, err := node.Start(ctx, cfg, nil)
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n.Close(ctx)
	})
	return n
}

// exportRow is one exported row in comparable form; "<nil>" marks null.
type exportRow string

func nullable(b []byte, null bool) string {
	if null {
		return "<nil>"
	}
	return fmt.Sprintf("%q", b)
}

// produceForExport writes records with null and empty keys and values and
// headers to three partitions, lz4-compressed, and returns the rows they
// must export as, keyed by partition/offset.
func produceForExport(t *testing.T, addr, topic string, n int) map[string]exportRow {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation(),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.Lz4Compression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	base := time.UnixMilli(1_767_225_600_000)
	recs := make([]*kgo.Record, n)
	for i := range recs {
		r := &kgo.Record{Topic: topic, Partition: int32(i % 3), Timestamp: base.Add(time.Duration(i) * time.Millisecond),
			Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(strings.Repeat("v", i%40))}
		if i%4 == 0 {
			r.Key = nil
		}
		if i%6 == 0 {
			r.Value = nil
		}
		if i%2 == 0 {
			r.Headers = []kgo.RecordHeader{{Key: "h", Value: []byte(fmt.Sprint(i))}, {Key: "n", Value: nil}}
		}
		recs[i] = r
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	want := map[string]exportRow{}
	for _, r := range recs {
		var hs []string
		for _, h := range r.Headers {
			hs = append(hs, h.Key+"="+nullable(h.Value, h.Value == nil))
		}
		want[fmt.Sprintf("%d/%d", r.Partition, r.Offset)] = exportRow(fmt.Sprintf("%s ts=%d key=%s value=%s headers=%v",
			r.Topic, r.Timestamp.UnixMilli(), nullable(r.Key, r.Key == nil), nullable(r.Value, r.Value == nil), hs))
	}
	return want
}

// exportedRows turns a record batch of query.Schema into rows keyed by
// partition/offset.
func exportedRows(t *testing.T, rec arrow.RecordBatch, into map[string]exportRow) {
	t.Helper()
	topic := rec.Column(0).(*array.String)
	part := rec.Column(1).(*array.Int32)
	off := rec.Column(2).(*array.Int64)
	ts := rec.Column(3).(*array.Timestamp)
	key := rec.Column(4).(*array.Binary)
	val := rec.Column(5).(*array.Binary)
	hl := rec.Column(6).(*array.List)
	hs := hl.ListValues().(*array.Struct)
	hk, hv := hs.Field(0).(*array.String), hs.Field(1).(*array.Binary)
	for i := 0; i < int(rec.NumRows()); i++ {
		var h []string
		s, e := hl.ValueOffsets(i)
		for j := int(s); j < int(e); j++ {
			h = append(h, hk.Value(j)+"="+nullable(hv.Value(j), hv.IsNull(j)))
		}
		k := fmt.Sprintf("%d/%d", part.Value(i), off.Value(i))
		if _, dup := into[k]; dup {
			t.Errorf("row %s exported twice", k)
		}
		into[k] = exportRow(fmt.Sprintf("%s ts=%d key=%s value=%s headers=%v",
			topic.Value(i), int64(ts.Value(i)), nullable(key.Value(i), key.IsNull(i)), nullable(val.Value(i), val.IsNull(i)), h))
	}
}

func compareExport(t *testing.T, what string, got, want map[string]exportRow) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d rows, want %d", what, len(got), len(want))
	}
	bad := 0
	for k, w := range want {
		if g := got[k]; g != w && bad < 5 {
			t.Errorf("%s: %s\n got  %s\n want %s", what, k, g, w)
			bad++
		}
	}
}

// TestExportParquetAndArrow runs `strata export` in-process against a real
// node and reads the files back with arrow-go's own readers.
func TestExportParquetAndArrow(t *testing.T) {
	n := exportNode(t)
	want := produceForExport(t, n.KafkaAddr(), "clicks", 900)
	dir := t.TempDir()
	httpURL := "http://" + n.HTTPAddr()

	t.Run("parquet", func(t *testing.T) {
		out := filepath.Join(dir, "clicks.parquet")
		var stdout, stderr bytes.Buffer
		if code := run([]string{"export", "--topic", "clicks", "--out", out, "--http", httpURL}, &stdout, &stderr); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		t.Logf("stderr: %s", stderr.String())
		if !strings.Contains(stderr.String(), "exported 900 rows") {
			t.Errorf("progress %q does not report 900 rows", stderr.String())
		}
		if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o644 {
			t.Errorf("output file %v (%v), want mode 0644", st, err)
		}
		pf, err := file.OpenParquetFile(out, false)
		if err != nil {
			t.Fatal(err)
		}
		defer pf.Close()
		if c, err := pf.MetaData().RowGroup(0).ColumnChunk(5); err != nil || c.Compression().String() != "ZSTD" {
			t.Errorf("value column chunk %v (%v), want ZSTD", c, err)
		}
		fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1000}, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		tbl, err := fr.ReadTable(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer tbl.Release()
		// Parquet names a list's element "element" where Arrow says
		// "item", and adds field ids; names, types and nullability must
		// survive.
		for i, f := range tbl.Schema().Fields() {
			w := query.Schema.Field(i)
			got := strings.Replace(f.Type.String(), "element:", "item:", 1)
			if f.Name != w.Name || f.Nullable != w.Nullable || got != w.Type.String() {
				t.Errorf("parquet column %d: %s %s nullable=%v, want %s %s nullable=%v", i, f.Name, f.Type, f.Nullable, w.Name, w.Type, w.Nullable)
			}
		}
		got := map[string]exportRow{}
		tr := array.NewTableReader(tbl, 1000)
		defer tr.Release()
		for tr.Next() {
			exportedRows(t, tr.RecordBatch(), got)
		}
		compareExport(t, "parquet", got, want)
	})

	t.Run("arrow", func(t *testing.T) {
		out := filepath.Join(dir, "p1.data")
		var stdout, stderr bytes.Buffer
		if code := run([]string{"export", "--topic", "clicks", "--partition", "1", "--from", "10", "--to", "200",
			"--format", "arrow", "--out", out, "--http", n.HTTPAddr()}, &stdout, &stderr); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fr, err := ipc.NewFileReader(f)
		if err != nil {
			t.Fatal(err)
		}
		defer fr.Close()
		got := map[string]exportRow{}
		for i := 0; i < fr.NumRecords(); i++ {
			rec, err := fr.RecordBatch(i)
			if err != nil {
				t.Fatal(err)
			}
			exportedRows(t, rec, got)
		}
		sub := map[string]exportRow{}
		for o := 10; o < 200; o++ {
			k := fmt.Sprintf("1/%d", o)
			sub[k] = want[k]
		}
		compareExport(t, "arrow partition 1 [10,200)", got, sub)
	})
}

// TestExportErrors checks the failures a person meets get a readable
// message, a non-zero exit and no output file.
func TestExportErrors(t *testing.T) {
	n := exportNode(t)
	produceForExport(t, n.KafkaAddr(), "clicks", 3)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	out := filepath.Join(dir, "x.parquet")
	live := "http://" + n.HTTPAddr()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--out", out}, "--topic is required"},
		{[]string{"--topic", "clicks"}, "--out is required"},
		{[]string{"--topic", "clicks", "--out", filepath.Join(dir, "x.csv")}, "cannot tell the format"},
		{[]string{"--topic", "clicks", "--out", out, "--format", "csv"}, `--format "csv"`},
		{[]string{"--topic", "clicks", "--out", out, "--http", dead}, "cannot reach the node at " + dead},
		{[]string{"--topic", "nope", "--out", out, "--http", live}, `not found: query: unknown topic: "nope"`},
		{[]string{"--topic", "clicks", "--out", out, "--http", live, "--partition", "7"}, "no partition 7"},
		{[]string{"--topic", "clicks", "--out", out, "--http", live, "--from", "9", "--to", "2"}, "must be greater than from"},
		{[]string{"--topic", "clicks", "--out", out, "--http", live, "--start-time", "soon"}, "neither RFC 3339"},
		{[]string{"--topic", "clicks", "--out", out, "--http", "ftp://x"}, "not an http(s) URL"},
		{[]string{"--topic", "clicks", "--out", out, "--http", live, "--decode", "avro"}, `decode="avro": want json`},
		{[]string{"--topic", "clicks", "--out", filepath.Join(dir, "missing", "x.arrow"), "--http", live}, "no such file or directory"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"export"}, c.args...), &stdout, &stderr)
		t.Logf("%v: %s", c.args, strings.TrimSpace(stderr.String()))
		if code == 0 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want failure containing %q", c.args, code, stderr.String(), c.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("%v: left %s behind", c.args, out)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("failed exports left files: %v", ents)
	}
}
