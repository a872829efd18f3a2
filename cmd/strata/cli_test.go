package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-io/strata/cmd/node"
)

// startNode runs a real node in-process for the CLI to talk to.
func startNode(t *testing.T) string {
	return startNodeWith(t, func(cfg *node.Config) { cfg.HTTPAddr = "" }).KafkaAddr()
}

// startNodeWith starts a node on loopback with a fresh data dir, after mod
// adjusted its config, and closes it when the test ends.
func startNodeWith(t *testing.T, mod func(*node.Config)) *node.Node {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.KafkaAddr = "127.0.0.1:0"
	cfg.FlushInterval = 10 * time.Millisecond
	mod(&cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := node.Start(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n.Close(ctx)
	})
	return n
}

// cli runs the strata command in-process and returns stdout, failing the
// test on a non-zero exit.
func cli(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("strata %s: exit %d\n%s", strings.Join(args, " "), code, errb.String())
	}
	return out.String()
}

func TestTopicAndGroupCommandsAgainstANode(t *testing.T) {
	addr := startNode(t)
	boot := "--bootstrap=" + addr
	if out := cli(t, "topic", "create", "orders", "--partitions", "3", "--config", "retention.ms=3600000", boot); !strings.Contains(out, "created topic orders with 3 partitions") {
		t.Fatalf("topic create: %q", out)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"topic", "create", "orders", boot}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "TOPIC_ALREADY_EXISTS") {
		t.Fatalf("creating an existing topic: exit %d, %q", code, errb.String())
	}
	if out := cli(t, "topic", "list", boot); !strings.Contains(out, "orders") {
		t.Fatalf("topic list: %q", out)
	}

	// 30 records, 10 per partition; a group consumes 30 and commits.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for i := 0; i < 30; i++ {
		if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "orders", Partition: int32(i % 3), Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup("billing"), kgo.ConsumeTopics("orders"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for got < 30 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of 30", got)
		}
		got += fs.NumRecords()
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	// Ten more records: lag 10 in total.
	for i := 0; i < 10; i++ {
		if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "orders", Partition: 0, Value: []byte("late")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	if out := cli(t, "group", "list", boot); !strings.Contains(out, "billing") {
		t.Fatalf("group list: %q", out)
	}
	desc := cli(t, "group", "describe", "billing", boot)
	t.Log("\n" + desc)
	for _, want := range []string{"group billing", "members 1", "/127.0.0.1", "orders  0          10         20              10"} {
		if !strings.Contains(desc, want) {
			t.Fatalf("group describe lacks %q:\n%s", want, desc)
		}
	}
	if td := cli(t, "topic", "describe", "orders", boot); !strings.Contains(td, "0          0       0      0          20") {
		t.Fatalf("topic describe:\n%s", td)
	}
	// A group with a member cannot be deleted or reset; once it left, it can.
	if code := run([]string{"group", "delete", "billing", boot}, &out, &errb); code == 0 {
		t.Fatal("deleting a group with a live member succeeded")
	}
	errb.Reset()
	if code := run([]string{"group", "reset", "billing", "--topic", "orders", "--to", "earliest", boot}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "stop its consumers first") {
		t.Fatalf("resetting a group with a live member: exit %d, %q", code, errb.String())
	}
	cons.Close()
	for _, bad := range [][]string{
		{"group", "reset", "billing", "--to", "earliest"},
		{"group", "reset", "billing", "--topic", "orders", "--to", "sideways"},
		{"group", "reset", "billing", "--topic", "orders", "--to", "offset", "--value", "-3"},
		{"group", "reset", "billing", "--topic", "orders", "--to", "timestamp", "--value", "noon"},
		{"group", "reset", "billing", "--topic", "orders", "--to", "earliest", "--partition", "7"},
	} {
		errb.Reset()
		if code := run(append(bad, boot), &out, &errb); code == 0 || errb.Len() == 0 {
			t.Fatalf("strata %v: exit %d, %q", bad, code, errb.String())
		}
	}
	if out := cli(t, "group", "reset", "billing", "--topic", "orders", "--partition", "0", "--to", "offset", "--value", "15", boot); out != "orders/0 -> 15\n" {
		t.Fatalf("group reset: %q", out)
	}
	if desc := cli(t, "group", "describe", "billing", boot); !strings.Contains(desc, "orders  0          15         20              5") {
		t.Fatalf("group describe after reset:\n%s", desc)
	}
	if out := cli(t, "group", "delete", "billing", boot); !strings.Contains(out, "deleted group billing") {
		t.Fatalf("group delete: %q", out)
	}
	if out := cli(t, "topic", "delete", "orders", boot); !strings.Contains(out, "deleted topic orders") {
		t.Fatalf("topic delete: %q", out)
	}
	if out := cli(t, "topic", "list", boot); strings.Contains(out, "orders") {
		t.Fatalf("topic still listed after delete: %q", out)
	}
}

// TestTopicDescribeShowsCompaction: a compacted topic's describe shows, per
// partition, how far compaction has reached and what it cost.
func TestTopicDescribeShowsCompaction(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.KafkaAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.FlightAddr = ""
	cfg.FlushInterval = 10 * time.Millisecond
	cfg.MaintenanceInterval = 20 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := node.Start(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n.Close(ctx)
	})
	boot, httpFlag := "--bootstrap="+n.KafkaAddr(), "--http=http://"+n.HTTPAddr()
	cli(t, "topic", "create", "table", "--config", "cleanup.policy=compact,segment.bytes=1024,min.cleanable.dirty.ratio=0.01", boot)
	prod, err := kgo.NewClient(kgo.SeedBrokers(n.KafkaAddr()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for i := 0; i < 400; i++ {
		if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "table", Key: []byte(fmt.Sprint(i % 10)), Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var td string
	for ctx.Err() == nil {
		td = cli(t, "topic", "describe", "table", boot, httpFlag)
		if strings.Contains(td, "cleanup.policy compact") && strings.Contains(td, "COMPACTED TO") && !strings.Contains(td, "never") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ctx.Err() != nil {
		t.Fatalf("topic describe never showed a compaction pass:\n%s", td)
	}
	t.Log("\n" + td)
}

// TestSubcommandHelp: "strata topic -h" and "strata group -h" print their
// usage and exit 0, instead of calling -h an unknown subcommand.
func TestSubcommandHelp(t *testing.T) {
	for _, c := range [][]string{{"topic", "-h"}, {"topic", "--help"}, {"group", "-h"}, {"group", "help"}} {
		var out, errb bytes.Buffer
		if code := run(c, &out, &errb); code != 0 || !strings.Contains(out.String(), "usage: strata "+c[0]) {
			t.Fatalf("strata %s: exit %d, stdout %q, stderr %q", strings.Join(c, " "), code, out.String(), errb.String())
		}
	}
}
