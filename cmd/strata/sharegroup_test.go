package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-io/strata/cmd/node"
)

// `strata group config` sets a share group's configs, and `strata group
// describe` shows a share group's members and, per partition, its start
// offset, records in flight, lag and the age of the oldest record not yet
// acknowledged; `strata group list` shows its type.
func TestShareGroupCommands(t *testing.T) {
	n := startNodeWith(t, func(cfg *node.Config) { cfg.HTTPAddr = "" })
	boot := "--bootstrap=" + n.KafkaAddr()
	out := cli(t, "group", "config", "jobs", "--set", "share.auto.offset.reset=earliest", "--set", "share.delivery.count.limit=4", boot)
	for _, want := range []string{`share.auto.offset.reset\s+earliest\s+group`, `share.delivery.count.limit\s+4\s+group`, `share.record.lock.duration.ms\s+30000\s+default`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Fatalf("group config lacks %q:\n%s", want, out)
		}
	}
	var sink, errb bytes.Buffer
	if code := run([]string{"group", "config", "jobs", "--set", "share.delivery.count.limit=99", boot}, &sink, &errb); code == 0 || !strings.Contains(errb.String(), "share.delivery.count.limit") {
		t.Fatalf("a bad value: exit %d, stderr %q", code, errb.String())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	prod, err := kgo.NewClient(kgo.SeedBrokers(n.KafkaAddr()), kgo.DefaultProduceTopic("tasks"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for i := range 30 {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(n.KafkaAddr()), kgo.ConsumeTopics("tasks"), kgo.ShareGroup("jobs"), kgo.ClientID("worker-1"), kgo.ShareMaxRecords(10), kgo.ShareMaxRecordsStrict())
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	// Take 10 records and accept only the first 5: the other 5 stay
	// acquired, in flight.
	var got []*kgo.Record
	for len(got) < 10 && ctx.Err() == nil {
		got = append(got, cons.PollRecords(ctx, 10).Records()...)
	}
	for _, r := range got[:5] {
		r.Ack(kgo.AckAccept)
	}
	if err := cons.FlushAcks(ctx); err != nil {
		t.Fatal(err)
	}
	var desc string
	re := regexp.MustCompile(`tasks\s+0\s+5\s+(\d+)\s+25\s+(\S+)\s+\S+`)
	for i := 0; i < 50; i++ {
		desc = cli(t, "group", "describe", "jobs", boot)
		if m := re.FindStringSubmatch(desc); m != nil && m[1] != "0" && m[2] != "-" {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, want := range []string{"type share", "state Stable", "worker-1", "START OFFSET", "IN FLIGHT", "OLDEST UNACKED"} {
		if !strings.Contains(desc, want) {
			t.Fatalf("group describe lacks %q:\n%s", want, desc)
		}
	}
	if m := re.FindStringSubmatch(desc); m == nil || m[1] != "5" || m[2] == "-" {
		t.Fatalf("group describe: want tasks/0 at start offset 5 with 5 records in flight, lag 25 and an age:\n%s", desc)
	}
	if list := cli(t, "group", "list", boot); !regexp.MustCompile(`jobs\s+share\s+Stable`).MatchString(list) {
		t.Fatalf("group list:\n%s", list)
	}
}
