package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-io/strata/cmd/node"
)

// consoleNode starts a node with its HTTP server (the console) on a free
// loopback port and a fast lag monitor. It returns the Kafka and HTTP
// addresses.
func consoleNode(t *testing.T) (kafka, web string) {
	t.Helper()
	n := startNodeWith(t, func(cfg *node.Config) {
		cfg.HTTPAddr = "127.0.0.1:0"
		cfg.LagInterval = 300 * time.Millisecond
	})
	return n.KafkaAddr(), "http://" + n.HTTPAddr()
}

// artifactDir is where the browser test keeps its screenshots:
// $STRATA_ARTIFACTS/console, else <tmp>/strata-artifacts/console.
func artifactDir(t *testing.T) string {
	base := os.Getenv("STRATA_ARTIFACTS")
	if base == "" {
		base = filepath.Join(os.TempDir(), "strata-artifacts")
	}
	dir := filepath.Join(base, "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser starts headless Debian Chromium through chromedp.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium not found on PATH (%v): run bash .ci/setup", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1400, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	// The first call starts the browser, which lives as long as its
	// context: no timeout there, only on the test's actions after it.
	if err := chromedp.Do(bctx); err != nil {
		cancelBrowser()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(bctx, 3*time.Minute)
	t.Cleanup(func() { cancel(); cancelBrowser(); cancelAlloc() })
	return ctx
}

// shot saves a full-page screenshot of what the browser shows now.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(artifactDir(t), name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

// waitText polls until the element sel's text satisfies ok.
func waitText(t *testing.T, ctx context.Context, sel string, what string, ok func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		txt, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e ? e.innerText : ""; })()`, sel)))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		last = txt
		if ok(txt) {
			return txt
		}
		time.Sleep(200 * time.Millisecond)
	}
	errText, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#error").innerText`))
	page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + document.querySelector("#main").innerText`))
	t.Fatalf("%s: %s never showed it; last %q (error banner: %q)\npage:\n%s", what, sel, last, errText, page)
	return ""
}

func TestConsoleInABrowser(t *testing.T) {
	kafka, web := consoleNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	boot := "--bootstrap=" + kafka
	cli(t, "topic", "create", "orders", "--partitions", "1", boot)

	prod, err := kgo.NewClient(kgo.SeedBrokers(kafka), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for i := 0; i < 30; i++ {
		if err := prod.ProduceSync(ctx, &kgo.Record{Key: []byte(fmt.Sprint("k", i)), Value: []byte(fmt.Sprintf(`{"n":%d}`, i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// A franz-go group consumer takes 20 records, commits and leaves:
	// lag 10.
	cons, err := kgo.NewClient(kgo.SeedBrokers(kafka), kgo.ConsumerGroup("billing"), kgo.ConsumeTopics("orders"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	var last *kgo.Record
	for n := 0; n < 20; {
		fs := cons.PollRecords(ctx, 20-n)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of 20", n)
		}
		fs.EachRecord(func(r *kgo.Record) { last = r; n++ })
	}
	if err := cons.CommitRecords(ctx, last); err != nil {
		t.Fatal(err)
	}
	cons.Close()
	desc := cli(t, "group", "describe", "billing", boot)
	if !strings.Contains(desc, "orders  0          20         30              10") {
		t.Fatalf("group describe:\n%s", desc)
	}

	b := browser(t)

	// Cluster page: this node, live and ready, leading orders/0.
	if err := chromedp.Do(b, chromedp.Navigate(web+"/#/")); err != nil {
		t.Fatal(err)
	}
	waitText(t, b, `#nodes tr[data-node="0"]`, "cluster page", func(s string) bool {
		return strings.Contains(s, "ready") && strings.Contains(s, "orders/0")
	})
	shot(t, b, "cluster")

	// Topic list shows the topic.
	if err := chromedp.Do(b, chromedp.Navigate(web+"/#/topics")); err != nil {
		t.Fatal(err)
	}
	row := waitText(t, b, `#topics tr[data-topic="orders"]`, "topic list", func(s string) bool { return strings.Contains(s, "orders") })
	if !strings.Contains(row, "30") {
		t.Fatalf("topic row %q lacks its 30 records", row)
	}
	// Bad input gets a readable error on the page.
	if err := chromedp.Do(b,
		chromedp.SetValue(chromedp.CSS(`#create-topic input[name=name]`), "bad/name"),
		chromedp.Click(chromedp.CSS(`#create-topic button`))); err != nil {
		t.Fatal(err)
	}
	waitText(t, b, "#error", "error banner", func(s string) bool { return strings.Contains(s, "INVALID_TOPIC") })
	shot(t, b, "topics")

	// Group page: the lag the consumer left, as `strata group describe`
	// shows it, and the lag chart from the coordinator's samples.
	if err := chromedp.Do(b, chromedp.Navigate(web+"/#/groups/billing")); err != nil {
		t.Fatal(err)
	}
	lag := waitText(t, b, `#group-partitions tr[data-tp="orders/0"]`, "group page", func(s string) bool { return strings.Contains(s, "10") })
	fields := strings.Fields(lag)
	if len(fields) < 5 || fields[2] != "20" || fields[3] != "30" || fields[4] != "10" {
		t.Fatalf("group page row %q, want committed 20, high watermark 30, lag 10 as in:\n%s", lag, desc)
	}
	waitText(t, b, "#lag-chart", "lag chart", func(s string) bool { return strings.Contains(s, "max 10 records") })
	shot(t, b, "group")

	// The same lag on /metrics.
	if got := metricValue(t, web, `strata_consumer_group_lag{group="billing",partition="0",topic="orders"}`); got != "10" {
		t.Fatalf("strata_consumer_group_lag = %q, want 10", got)
	}

	// An offset reset from the console is what the next consumer sees.
	if err := chromedp.Do(b,
		chromedp.SetValue(chromedp.CSS(`#reset select[name=to]`), "offset"),
		chromedp.SetValue(chromedp.CSS(`#reset input[name=value]`), "5"),
		chromedp.Click(chromedp.CSS(`#reset button`))); err != nil {
		t.Fatal(err)
	}
	waitText(t, b, "#reset-result", "reset result", func(s string) bool { return strings.Contains(s, "orders/0 → 5") })
	waitText(t, b, `#group-partitions tr[data-tp="orders/0"] td.lag`, "lag after the reset", func(s string) bool { return s == "25" })
	shot(t, b, "group-reset")
	next, err := kgo.NewClient(kgo.SeedBrokers(kafka), kgo.ConsumerGroup("billing"), kgo.ConsumeTopics("orders"), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	var first *kgo.Record
	for first == nil && ctx.Err() == nil {
		next.PollRecords(ctx, 1).EachRecord(func(r *kgo.Record) {
			if first == nil {
				first = r
			}
		})
	}
	next.Close()
	if first == nil || first.Offset != 5 {
		t.Fatalf("the next consumer started at %v, want offset 5", first)
	}

	// Live tail: a record produced after the tail started shows up, its
	// JSON value pretty-printed.
	if err := chromedp.Do(b, chromedp.Navigate(web+"/#/topics/orders")); err != nil {
		t.Fatal(err)
	}
	waitText(t, b, `#partitions tr[data-partition="0"]`, "partition table", func(s string) bool { return strings.Contains(s, "30") })
	if err := chromedp.Do(b, chromedp.Click(chromedp.CSS(`#tail-start`))); err != nil {
		t.Fatal(err)
	}
	waitText(t, b, ".status", "tail status", func(s string) bool { return strings.HasPrefix(s, "live") })
	if err := prod.ProduceSync(ctx, &kgo.Record{Key: []byte("tail-key"), Value: []byte(`{"seen":"live","n":31}`),
		Headers: []kgo.RecordHeader{{Key: "origin", Value: []byte("test")}}}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	rec := waitText(t, b, `#tail tr.tail-record[data-offset="30"]`, "live tail", func(s string) bool { return strings.Contains(s, "tail-key") })
	if !strings.Contains(rec, "\"seen\": \"live\"") || !strings.Contains(rec, "origin: test") {
		t.Fatalf("tail row %q: want the pretty-printed JSON value and the header", rec)
	}
	// A test record from the produce form.
	if err := chromedp.Do(b,
		chromedp.SetValue(chromedp.CSS(`#produce input[name=key]`), "from-form"),
		chromedp.SetValue(chromedp.CSS(`#produce textarea[name=value]`), "hello"),
		chromedp.Click(chromedp.CSS(`#produce button`))); err != nil {
		t.Fatal(err)
	}
	waitText(t, b, "#produce-result", "produce result", func(s string) bool { return strings.Contains(s, "offset 31") })
	waitText(t, b, `#tail tr.tail-record[data-offset="31"]`, "the form's record in the tail", func(s string) bool { return strings.Contains(s, "from-form") })
	shot(t, b, "topic")
}

// metricValue reads one series' value from /metrics, waiting for it.
func metricValue(t *testing.T, web, series string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(web + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
				resp.Body.Close()
				return v
			}
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s not on /metrics", series)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// consoleCall sends one console API request and decodes the JSON answer.
func consoleCall(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, raw)
		}
	}
	return resp.StatusCode, out
}

func TestConsoleAPIChangesTopicsAndRefusesBadInput(t *testing.T) {
	kafka, web := consoleNode(t)
	api := web + "/console/api"
	boot := "--bootstrap=" + kafka

	if code, out := consoleCall(t, "POST", api+"/topics", `{"name":"events","partitions":3,"configs":{"retention.ms":"3600000"}}`); code != 200 {
		t.Fatalf("create: %d %v", code, out)
	}
	if td := cli(t, "topic", "describe", "events", boot); !strings.Contains(td, "partitions 3") || !strings.Contains(td, "retention.ms 3600000") {
		t.Fatalf("after create from the console:\n%s", td)
	}
	if code, out := consoleCall(t, "PUT", api+"/topics/events/configs", `{"set":{"cleanup.policy":"compact"},"delete":["retention.ms"]}`); code != 200 {
		t.Fatalf("alter: %d %v", code, out)
	}
	td := cli(t, "topic", "describe", "events", boot)
	if !strings.Contains(td, "cleanup.policy compact") || strings.Contains(td, "retention.ms") {
		t.Fatalf("after alter from the console:\n%s", td)
	}

	// Bad input: a clear error, the right status, nothing changed.
	for _, c := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"POST", "/topics", `{"name":"events","partitions":1}`, 400, "TOPIC_ALREADY_EXISTS"},
		{"POST", "/topics", `{"name":"x","partitions":0}`, 400, "partitions must be at least 1"},
		{"POST", "/topics", `{"name":"y","partitions":1,"configs":{"retention.ms":"soon"}}`, 400, "INVALID_CONFIG"},
		{"POST", "/topics", `not json`, 400, "bad request body"},
		{"POST", "/topics", `{"name":"z","partitions":1,"color":"red"}`, 400, "unknown field"},
		{"PUT", "/topics/events/configs", `{"set":{"segment.bytes":"-5"}}`, 400, "INVALID_CONFIG"},
		{"GET", "/topics/nope", ``, 404, "no topic"},
		{"GET", "/topics/events/records?from=7:0", ``, 400, "partitions 0 to 2"},
		{"GET", "/topics/events/records?limit=0", ``, 400, "limit"},
		{"POST", "/topics/events/records", `{"value":"v","partition":9}`, 400, "partitions 0 to 2"},
		{"POST", "/groups/g/reset", `{"topic":"events","to":"yesterday"}`, 400, "want earliest, latest, timestamp or offset"},
		{"POST", "/groups/g/reset", `{"topic":"nope","to":"earliest"}`, 404, "no topic"},
		{"DELETE", "/topics/nope", ``, 404, "UNKNOWN_TOPIC_OR_PARTITION"},
		{"GET", "/nothing-here", ``, 404, "no such console API"},
	} {
		code, out := consoleCall(t, c.method, api+c.path, c.body)
		msg, _ := out["error"].(string)
		if code != c.status || !strings.Contains(msg, c.want) {
			t.Errorf("%s %s %s: %d %q, want %d and %q", c.method, c.path, c.body, code, msg, c.status, c.want)
		}
	}
	if out := cli(t, "topic", "list", boot); strings.Contains(out, "\nx") || strings.Contains(out, "\ny") || strings.Contains(out, "\nz") {
		t.Fatalf("a refused create made a topic:\n%s", out)
	}

	// A reset while the group has a member is refused (409) and changes
	// nothing.
	prod, err := kgo.NewClient(kgo.SeedBrokers(kafka), kgo.DefaultProduceTopic("events"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := 0; i < 12; i++ {
		if err := prod.ProduceSync(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i % 4)), Value: []byte("v"), Partition: int32(i % 3)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	member, err := kgo.NewClient(kgo.SeedBrokers(kafka), kgo.ConsumerGroup("busy"), kgo.ConsumeTopics("events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	for n := 0; n < 12 && ctx.Err() == nil; {
		n += member.PollFetches(ctx).NumRecords()
	}
	if err := member.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	if code, out := consoleCall(t, "POST", api+"/groups/busy/reset", `{"topic":"events","to":"earliest"}`); code != 409 || !strings.Contains(fmt.Sprint(out["error"]), "stop its consumers first") {
		t.Fatalf("reset of a group with a member: %d %v", code, out)
	}
	if desc := cli(t, "group", "describe", "busy", boot); !strings.Contains(desc, "lag 0") {
		t.Fatalf("the refused reset moved offsets:\n%s", desc)
	}

	// The Parquet download holds every record.
	resp, err := http.Get(web + "/v1/topics/events/parquet")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Disposition") == "" {
		t.Fatalf("parquet download: %s %q", resp.Status, data)
	}
	rdr, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parquet download is not a Parquet file: %v", err)
	}
	if n := rdr.NumRows(); n != 12 {
		t.Fatalf("parquet download has %d rows, want 12", n)
	}
	if resp, err := http.Get(web + "/v1/topics/nope/parquet"); err != nil || resp.StatusCode != 404 {
		t.Fatalf("parquet of an unknown topic: %v %v", resp.Status, err)
	}

	if code, out := consoleCall(t, "DELETE", api+"/topics/events", ``); code != 200 {
		t.Fatalf("delete: %d %v", code, out)
	}
	if code, _ := consoleCall(t, "GET", api+"/topics/events", ``); code != 404 {
		t.Fatalf("deleted topic still served: %d", code)
	}
}

// On a cluster, any node's console shows every partition with its leader's
// own figures (hot tier bytes, traffic), fetched from the leader at the HTTP
// address it registered, and every node's health.
func TestConsoleShowsEveryNodesPartitions(t *testing.T) {
	store := "file://" + t.TempDir()
	n0 := startNodeWith(t, func(cfg *node.Config) {
		cfg.HTTPAddr = "127.0.0.1:0"
		cfg.ObjectStore, cfg.CreateBucket = store, true
	})
	startNodeWith(t, func(cfg *node.Config) {
		cfg.NodeID = 1
		cfg.HTTPAddr = "127.0.0.1:0"
		cfg.EtcdEndpoints = n0.EtcdEndpoints()
		cfg.ObjectStore = store
	})
	web := "http://" + n0.HTTPAddr()
	boot := "--bootstrap=" + n0.KafkaAddr()
	const parts = 32 // rendezvous hashing puts some on each node (all on one: 2^-31)
	cli(t, "topic", "create", "spread", "--partitions", fmt.Sprint(parts), boot)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prod, err := kgo.NewClient(kgo.SeedBrokers(n0.KafkaAddr()), kgo.DefaultProduceTopic("spread"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	// Both nodes must be live (and the partitions spread) before producing.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, out := consoleCall(t, "GET", web+"/console/api/cluster", "")
		if nodes, _ := out["nodes"].([]any); len(nodes) == 2 {
			ready := 0
			for _, n := range nodes {
				if n.(map[string]any)["ready"] == "ready" {
					ready++
				}
			}
			if ready == 2 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster view never showed two ready nodes: %v", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for p := int32(0); p < parts; p++ {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("v"), Partition: p}).FirstErr(); err != nil {
			t.Fatalf("produce to %d: %v", p, err)
		}
	}
	_, out := consoleCall(t, "GET", web+"/console/api/topics/spread", "")
	details, _ := out["partition_details"].([]any)
	if len(details) != parts {
		t.Fatalf("topic view: %v", out)
	}
	leaders := map[float64]int{}
	for _, d := range details {
		pv := d.(map[string]any)
		local, _ := pv["local"].(map[string]any)
		if local == nil || pv["local_error"] != nil {
			t.Fatalf("partition %v: no figures from its leader: %v", pv["partition"], pv)
		}
		if local["hot_bytes"].(float64) <= 0 || local["records_in"].(float64) != 1 || pv["high_watermark"].(float64) != 1 {
			t.Fatalf("partition %v: %v", pv["partition"], pv)
		}
		leaders[pv["leader"].(float64)]++
	}
	if len(leaders) != 2 {
		t.Fatalf("leaders %v: want partitions on both nodes", leaders)
	}
}
