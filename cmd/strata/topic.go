package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/query"
)

const topicUsage = `usage: strata topic create NAME [--partitions N] [--config k=v,k2=v2]
       strata topic list
       strata topic describe NAME [--http URL]
       strata topic delete NAME
Every subcommand takes --bootstrap host:port (default 127.0.0.1:9092, env
STRATA_BOOTSTRAP) and --timeout; "strata topic SUBCOMMAND -h" lists its flags.
`

// isHelp reports whether a subcommand argument asks for help.
func isHelp(s string) bool { return s == "-h" || s == "--help" || s == "help" || s == "-help" }

// topicCmd administers topics over the Kafka protocol, as any Kafka admin
// tool would, so it works against any node of the cluster.
func topicCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("topic: want a subcommand: create, list, describe or delete")
	}
	sub := args[0]
	if isHelp(sub) {
		fmt.Fprint(stdout, topicUsage)
		return nil
	}
	a := newAdminCmd("topic "+sub, stderr)
	partitions := a.fs.Int("partitions", 1, "number of partitions (create)")
	var configs listFlag
	a.fs.Var(&configs, "config", "topic configs as k=v,k2=v2 (create)")
	httpURL := a.fs.String("http", envOr("STRATA_HTTP", "http://127.0.0.1:9644"), "a node's HTTP address, for compaction progress (describe; env STRATA_HTTP)")
	if err := a.parse(args[1:]); err != nil {
		return err
	}
	needName := func() (string, error) { return a.one("topic") }
	if sub != "create" && sub != "list" && sub != "describe" && sub != "delete" {
		return fmt.Errorf("topic: unknown subcommand %q (want create, list, describe or delete)", sub)
	}
	if sub == "create" && *partitions < 1 {
		return fmt.Errorf("topic create: --partitions must be at least 1")
	}
	ctx, cl, done, err := a.dial()
	if err != nil {
		return err
	}
	defer done()

	switch sub {
	case "create":
		name, err := needName()
		if err != nil {
			return err
		}
		return topicCreate(ctx, cl, stdout, name, int32(*partitions), configs)
	case "list":
		return topicList(ctx, cl, stdout)
	case "describe":
		name, err := needName()
		if err != nil {
			return err
		}
		if err := topicDescribe(ctx, cl, stdout, name); err != nil {
			return err
		}
		return describeCompaction(ctx, cl, stdout, *httpURL, name)
	case "delete":
		name, err := needName()
		if err != nil {
			return err
		}
		return topicDelete(ctx, cl, stdout, name)
	default:
		return fmt.Errorf("topic: unknown subcommand %q (want create, list, describe or delete)", sub)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func topicCreate(ctx context.Context, cl *kgo.Client, w io.Writer, name string, partitions int32, configs []string) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10000
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic = name
	t.NumPartitions = partitions
	t.ReplicationFactor = -1
	for _, kv := range configs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("topic create: config %q is not k=v", kv)
		}
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name = k
		c.Value = kmsg.StringPtr(v)
		t.Configs = append(t.Configs, c)
	}
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("topic create: %w", err)
	}
	for _, rt := range resp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil {
			msg := ""
			if rt.ErrorMessage != nil {
				msg = ": " + *rt.ErrorMessage
			}
			return fmt.Errorf("topic create %s: %v%s", name, err, msg)
		}
	}
	fmt.Fprintf(w, "created topic %s with %d partitions\n", name, partitions)
	return nil
}

func metadataFor(ctx context.Context, cl *kgo.Client, topics []string) (*kmsg.MetadataResponse, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = false
	if topics != nil {
		for _, name := range topics {
			t := kmsg.NewMetadataRequestTopic()
			t.Topic = kmsg.StringPtr(name)
			req.Topics = append(req.Topics, t)
		}
	}
	return req.RequestWith(ctx, cl)
}

func topicList(ctx context.Context, cl *kgo.Client, w io.Writer) error {
	resp, err := metadataFor(ctx, cl, nil)
	if err != nil {
		return fmt.Errorf("topic list: %w", err)
	}
	sort.Slice(resp.Topics, func(i, j int) bool { return deref(resp.Topics[i].Topic) < deref(resp.Topics[j].Topic) })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITIONS")
	for _, t := range resp.Topics {
		fmt.Fprintf(tw, "%s\t%d\n", deref(t.Topic), len(t.Partitions))
	}
	return tw.Flush()
}

func topicDescribe(ctx context.Context, cl *kgo.Client, w io.Writer, name string) error {
	resp, err := metadataFor(ctx, cl, []string{name})
	if err != nil {
		return fmt.Errorf("topic describe: %w", err)
	}
	if len(resp.Topics) != 1 {
		return fmt.Errorf("topic describe: no answer for %s", name)
	}
	t := resp.Topics[0]
	if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
		return fmt.Errorf("topic describe %s: %v", name, err)
	}
	sort.Slice(t.Partitions, func(i, j int) bool { return t.Partitions[i].Partition < t.Partitions[j].Partition })

	// Offsets per partition: earliest and latest (the high watermark).
	offsets := map[int32][2]int64{}
	for i, ts := range []int64{-2, -1} {
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = name
		for _, p := range t.Partitions {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition = p.Partition
			rp.Timestamp = ts
			rp.CurrentLeaderEpoch = -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		lresp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return fmt.Errorf("topic describe: list offsets: %w", err)
		}
		for _, lt := range lresp.Topics {
			for _, lp := range lt.Partitions {
				o := offsets[lp.Partition]
				o[i] = lp.Offset
				if lp.ErrorCode != 0 {
					o[i] = -1
				}
				offsets[lp.Partition] = o
			}
		}
	}
	fmt.Fprintf(w, "topic %s  id %x  partitions %d\n", name, t.TopicID, len(t.Partitions))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tLEADER\tEPOCH\tLOG START\tHIGH WATERMARK")
	for _, p := range t.Partitions {
		o := offsets[p.Partition]
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\n", p.Partition, p.Leader, p.LeaderEpoch, o[0], o[1])
	}
	return tw.Flush()
}

func topicDelete(ctx context.Context, cl *kgo.Client, w io.Writer, name string) error {
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TimeoutMillis = 10000
	req.TopicNames = []string{name}
	t := kmsg.NewDeleteTopicsRequestTopic()
	t.Topic = kmsg.StringPtr(name)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("topic delete: %w", err)
	}
	for _, rt := range resp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil {
			return fmt.Errorf("topic delete %s: %v", name, err)
		}
	}
	fmt.Fprintf(w, "deleted topic %s\n", name)
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// describeCompaction prints, for a compacted topic, each partition's
// compaction progress and cost, read from a node's HTTP API (the state is
// in etcd, which Kafka's protocol does not show). A node it cannot reach is
// a note, not a failure: the Kafka part of describe stands.
func describeCompaction(ctx context.Context, cl *kgo.Client, w io.Writer, httpURL, name string) error {
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType = kmsg.ConfigResourceTypeTopic
	rr.ResourceName = name
	req.Resources = append(req.Resources, rr)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || len(resp.Resources) != 1 || resp.Resources[0].ErrorCode != 0 {
		return nil // an older node, or no answer: nothing to add
	}
	// cleanup.policy always, then the configs set on the topic itself
	// (not defaults), sorted.
	policy := "delete"
	var own []string
	for _, c := range resp.Resources[0].Configs {
		if c.Value == nil {
			continue
		}
		if c.Name == "cleanup.policy" {
			policy = *c.Value
		} else if c.Source == kmsg.ConfigSourceDynamicTopicConfig {
			own = append(own, c.Name+" "+*c.Value)
		}
	}
	sort.Strings(own)
	fmt.Fprintf(w, "cleanup.policy %s\n", policy)
	for _, line := range own {
		fmt.Fprintln(w, line)
	}
	if !strings.Contains(policy, "compact") {
		return nil
	}
	u := strings.TrimRight(httpURL, "/") + "/v1/topics/" + url.PathEscape(name) + "/compaction"
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("topic describe: --http %q: %w", httpURL, err)
	}
	hresp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		fmt.Fprintf(w, "compaction: cannot read %s: %v (set --http to a node's --http-addr)\n", u, err)
		return nil
	}
	defer hresp.Body.Close()
	var rep query.CompactionReport
	if hresp.StatusCode != http.StatusOK || json.NewDecoder(hresp.Body).Decode(&rep) != nil {
		fmt.Fprintf(w, "compaction: %s answered %s\n", u, hresp.Status)
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tCOMPACTED TO\tDIRTY OFFSETS\tPASSES\tLAST PASS\tRECORDS IN/OUT\tBYTES READ/WRITTEN\tPUTS\tGETS")
	for _, p := range rep.Partitions {
		last := "never"
		if p.LastMs > 0 {
			last = time.UnixMilli(p.LastMs).UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%s\t%d/%d\t%d/%d\t%d\t%d\n", p.Partition, p.Cleaned, max(p.HighWatermark-max(p.Cleaned, p.LogStartOffset), 0),
			p.Passes, last, p.RecordsIn, p.RecordsOut, p.BytesRead, p.BytesWritten, p.Puts, p.Gets)
	}
	return tw.Flush()
}
