package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/cmd/node/console"
	"github.com/strata-io/strata/query"
)

// groupCmd shows and deletes consumer groups over the Kafka protocol.
const groupUsage = `usage: strata group list
       strata group describe NAME
       strata group reset NAME --topic T --to earliest|latest|timestamp|offset [--value V] [--partition P,...]
       strata group delete NAME
       strata group config NAME [--set KEY=VALUE ...] [--delete KEY ...]
config shows a group's configs (with their defaults) after applying any
--set and --delete: share.auto.offset.reset, share.record.lock.duration.ms,
share.delivery.count.limit, share.heartbeat.interval.ms,
share.session.timeout.ms, consumer.heartbeat.interval.ms,
consumer.session.timeout.ms.
reset moves an empty group's committed offsets: to the log start, the high
watermark, the first record at or after --value (RFC 3339 or ms since the
epoch), or offset --value (clamped to the log). A group with members is
refused: stop its consumers first.
Every subcommand takes --bootstrap host:port (default 127.0.0.1:9092, env
STRATA_BOOTSTRAP) and --timeout; "strata group SUBCOMMAND -h" lists its flags.
`

func groupCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("group: want a subcommand: list, describe or delete")
	}
	sub := args[0]
	if isHelp(sub) {
		fmt.Fprint(stdout, groupUsage)
		return nil
	}
	a := newAdminCmd("group "+sub, stderr)
	topic := a.fs.String("topic", "", "the topic whose offsets to reset (reset)")
	to := a.fs.String("to", "", "earliest, latest, timestamp or offset (reset)")
	value := a.fs.String("value", "", "the timestamp (RFC 3339 or epoch ms) or the offset (reset)")
	parts := a.fs.String("partition", "", "partitions to reset, comma-separated (reset; default: all)")
	var sets, dels multiFlag
	a.fs.Var(&sets, "set", "KEY=VALUE: set a group config (config; repeatable)")
	a.fs.Var(&dels, "delete", "KEY: back to the default (config; repeatable)")
	if err := a.parse(args[1:]); err != nil {
		return err
	}
	if sub != "list" && sub != "describe" && sub != "delete" && sub != "reset" && sub != "config" {
		return fmt.Errorf("group: unknown subcommand %q (want list, describe, reset, delete or config)", sub)
	}
	var target console.ResetTarget
	var partitions []int32
	if sub == "reset" {
		var err error
		if target, partitions, err = resetArgs(*topic, *to, *value, *parts); err != nil {
			return err
		}
	}
	needName := func() (string, error) { return a.one("group") }
	ctx, cl, done, err := a.dial()
	if err != nil {
		return err
	}
	defer done()
	switch sub {
	case "list":
		return groupList(ctx, cl, stdout)
	case "describe":
		name, err := needName()
		if err != nil {
			return err
		}
		return groupDescribe(ctx, cl, stdout, name)
	case "reset":
		name, err := needName()
		if err != nil {
			return err
		}
		offsets, err := console.ResetOffsets(ctx, cl, name, *topic, partitions, target)
		if err != nil {
			return fmt.Errorf("group reset %s: %v", name, err)
		}
		ps := make([]int32, 0, len(offsets))
		for p := range offsets {
			ps = append(ps, p)
		}
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		for _, p := range ps {
			fmt.Fprintf(stdout, "%s/%d -> %d\n", *topic, p, offsets[p])
		}
		return nil
	case "delete":
		name, err := needName()
		if err != nil {
			return err
		}
		return groupDelete(ctx, cl, stdout, name)
	case "config":
		name, err := needName()
		if err != nil {
			return err
		}
		return groupConfig(ctx, cl, stdout, name, sets, dels)
	default:
		return fmt.Errorf("group: unknown subcommand %q (want list, describe, reset or delete)", sub)
	}
}

func groupList(ctx context.Context, cl *kgo.Client, w io.Writer) error {
	req := kmsg.NewPtrListGroupsRequest()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("group list: %w", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return fmt.Errorf("group list: %v", err)
	}
	sort.Slice(resp.Groups, func(i, j int) bool { return resp.Groups[i].Group < resp.Groups[j].Group })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tTYPE\tSTATE\tPROTOCOL TYPE")
	for _, g := range resp.Groups {
		typ := g.GroupType
		if typ == "" {
			typ = "classic"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", g.Group, typ, g.GroupState, g.ProtocolType)
	}
	return tw.Flush()
}

func groupDescribe(ctx context.Context, cl *kgo.Client, w io.Writer, name string) error {
	g, err := console.DescribeGroup(ctx, cl, name)
	if err != nil {
		return fmt.Errorf("group describe %s: %v", name, err)
	}
	proto := g.ProtocolType
	if g.Protocol != "" {
		proto += "/" + g.Protocol // the assignor, while the group has members
	}
	if proto == "" {
		proto = "-"
	}
	fmt.Fprintf(w, "group %s  type %s  state %s  protocol %s  members %d  lag %d\n", name, g.Type, g.State, proto, len(g.Members), g.Lag)
	if len(g.Members) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "MEMBER\tINSTANCE\tCLIENT\tHOST")
		for _, m := range g.Members {
			inst := m.InstanceID
			if inst == "" {
				inst = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.ID, inst, m.ClientID, m.Host)
		}
		tw.Flush()
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	dash := func(v int64) string {
		if v < 0 {
			return "-"
		}
		return fmt.Sprint(v)
	}
	if g.Type == "share" {
		// A share group has no committed offsets: each partition has a
		// start offset (the oldest record not yet acknowledged), records
		// in flight, and the lag (in flight plus not yet delivered).
		fmt.Fprintln(tw, "TOPIC\tPARTITION\tSTART OFFSET\tIN FLIGHT\tLAG\tOLDEST UNACKED\tMEMBERS")
		for _, p := range g.Partitions {
			age := "-"
			if p.OldestUnackedMs >= 0 {
				age = (time.Duration(p.OldestUnackedMs) * time.Millisecond).Round(time.Millisecond).String()
			}
			m := p.Member
			if m == "" {
				m = "-"
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\t%s\n", p.Topic, p.Partition, dash(p.StartOffset), p.InFlight, dash(p.Lag), age, m)
		}
		return tw.Flush()
	}
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCOMMITTED\tHIGH WATERMARK\tLAG\tMEMBER")
	for _, p := range g.Partitions {
		m := p.Member
		if m == "" {
			m = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", p.Topic, p.Partition, dash(p.Committed), dash(p.HighWatermark), dash(p.Lag), m)
	}
	return tw.Flush()
}

func groupDelete(ctx context.Context, cl *kgo.Client, w io.Writer, name string) error {
	req := kmsg.NewPtrDeleteGroupsRequest()
	req.Groups = []string{name}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("group delete: %w", err)
	}
	for _, g := range resp.Groups {
		if err := kerr.ErrorForCode(g.ErrorCode); err != nil {
			return fmt.Errorf("group delete %s: %v", name, err)
		}
	}
	fmt.Fprintf(w, "deleted group %s\n", name)
	return nil
}

// resetArgs checks `group reset`'s flags.
func resetArgs(topic, to, value, parts string) (console.ResetTarget, []int32, error) {
	t := console.ResetTarget{To: to}
	if topic == "" {
		return t, nil, errors.New("group reset: --topic is required")
	}
	switch to {
	case "earliest", "latest":
		if value != "" {
			return t, nil, fmt.Errorf("group reset: --to %s takes no --value", to)
		}
	case "timestamp":
		ts, err := query.ParseTime(value)
		if err != nil {
			return t, nil, fmt.Errorf("group reset: --value %q: %v", value, err)
		}
		t.Value = ts.UnixMilli()
	case "offset":
		o, err := strconv.ParseInt(value, 10, 64)
		if err != nil || o < 0 {
			return t, nil, fmt.Errorf("group reset: --value %q: want a non-negative offset", value)
		}
		t.Value = o
	default:
		return t, nil, fmt.Errorf("group reset: --to %q: want earliest, latest, timestamp or offset", to)
	}
	var ps []int32
	if parts != "" {
		for _, f := range strings.Split(parts, ",") {
			p, err := strconv.ParseInt(strings.TrimSpace(f), 10, 32)
			if err != nil || p < 0 {
				return t, nil, fmt.Errorf("group reset: --partition %q: want partition numbers", parts)
			}
			ps = append(ps, int32(p))
		}
	}
	return t, ps, nil
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// groupConfig applies --set and --delete to a group's configs
// (IncrementalAlterConfigs on a GROUP resource) and prints them all.
func groupConfig(ctx context.Context, cl *kgo.Client, w io.Writer, name string, sets, dels []string) error {
	if len(sets)+len(dels) > 0 {
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeGroupConfig, name
		for _, kv := range sets {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return fmt.Errorf("group config: --set %q: want KEY=VALUE", kv)
			}
			c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
			c.Name, c.Value = k, kmsg.StringPtr(v)
			rr.Configs = append(rr.Configs, c)
		}
		for _, k := range dels {
			c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
			c.Name, c.Op = k, kmsg.IncrementalAlterConfigOpDelete
			rr.Configs = append(rr.Configs, c)
		}
		req.Resources = append(req.Resources, rr)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return fmt.Errorf("group config %s: %w", name, err)
		}
		for _, r := range resp.Resources {
			if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
				msg := err.Error()
				if r.ErrorMessage != nil {
					msg = *r.ErrorMessage
				}
				return fmt.Errorf("group config %s: %s", name, msg)
			}
		}
	}
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeGroupConfig, name
	req.Resources = append(req.Resources, rr)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("group config %s: %w", name, err)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONFIG\tVALUE\tSOURCE")
	for _, r := range resp.Resources {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			return fmt.Errorf("group config %s: %v", name, err)
		}
		for _, c := range r.Configs {
			src := "default"
			if c.Source == kmsg.ConfigSourceGroupConfig || (resp.Version == 0 && !c.IsDefault) {
				src = "group"
			}
			v := ""
			if c.Value != nil {
				v = *c.Value
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, v, src)
		}
	}
	return tw.Flush()
}
