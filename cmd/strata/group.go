package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupCmd shows and deletes consumer groups over the Kafka protocol.
const groupUsage = `usage: strata group list
       strata group describe NAME
       strata group delete NAME
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
	if err := a.parse(args[1:]); err != nil {
		return err
	}
	if sub != "list" && sub != "describe" && sub != "delete" {
		return fmt.Errorf("group: unknown subcommand %q (want list, describe or delete)", sub)
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
	case "delete":
		name, err := needName()
		if err != nil {
			return err
		}
		return groupDelete(ctx, cl, stdout, name)
	default:
		return fmt.Errorf("group: unknown subcommand %q (want list, describe or delete)", sub)
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
	fmt.Fprintln(tw, "GROUP\tSTATE\tPROTOCOL TYPE")
	for _, g := range resp.Groups {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", g.Group, g.GroupState, g.ProtocolType)
	}
	return tw.Flush()
}

func groupDescribe(ctx context.Context, cl *kgo.Client, w io.Writer, name string) error {
	dreq := kmsg.NewPtrDescribeGroupsRequest()
	dreq.Groups = []string{name}
	dresp, err := dreq.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("group describe: %w", err)
	}
	if len(dresp.Groups) != 1 {
		return fmt.Errorf("group describe: no answer for %s", name)
	}
	g := dresp.Groups[0]
	if err := kerr.ErrorForCode(g.ErrorCode); err != nil {
		return fmt.Errorf("group describe %s: %v", name, err)
	}

	// Committed offsets, and the high watermarks to compute lag.
	freq := kmsg.NewPtrOffsetFetchRequest()
	freq.Group = name
	freq.Topics = nil // all committed
	fresp, err := freq.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("group describe: offsets: %w", err)
	}
	if err := kerr.ErrorForCode(fresp.ErrorCode); err != nil {
		return fmt.Errorf("group describe %s: offsets: %v", name, err)
	}
	type tp struct {
		topic string
		part  int32
	}
	committed := map[tp]int64{}
	var tps []tp
	for _, t := range fresp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode == 0 && p.Offset >= 0 {
				k := tp{t.Topic, p.Partition}
				committed[k] = p.Offset
				tps = append(tps, k)
			}
		}
	}
	// Who owns each partition, from the consumer protocol's assignments.
	owner := map[tp]string{}
	for _, m := range g.Members {
		var a kmsg.ConsumerMemberAssignment
		if g.ProtocolType == "consumer" && a.ReadFrom(m.MemberAssignment) == nil {
			for _, t := range a.Topics {
				for _, p := range t.Partitions {
					k := tp{t.Topic, p}
					owner[k] = m.MemberID
					if _, ok := committed[k]; !ok {
						committed[k] = -1
						tps = append(tps, k)
					}
				}
			}
		}
	}
	hw := map[tp]int64{}
	if len(tps) > 0 {
		lreq := kmsg.NewPtrListOffsetsRequest()
		lreq.ReplicaID = -1
		byTopic := map[string]*kmsg.ListOffsetsRequestTopic{}
		for _, k := range tps {
			t := byTopic[k.topic]
			if t == nil {
				nt := kmsg.NewListOffsetsRequestTopic()
				nt.Topic = k.topic
				t = &nt
				byTopic[k.topic] = t
			}
			p := kmsg.NewListOffsetsRequestTopicPartition()
			p.Partition = k.part
			p.Timestamp = -1
			p.CurrentLeaderEpoch = -1
			t.Partitions = append(t.Partitions, p)
		}
		for _, t := range byTopic {
			lreq.Topics = append(lreq.Topics, *t)
		}
		lresp, err := lreq.RequestWith(ctx, cl)
		if err != nil {
			return fmt.Errorf("group describe: high watermarks: %w", err)
		}
		for _, t := range lresp.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode == 0 {
					hw[tp{t.Topic, p.Partition}] = p.Offset
				}
			}
		}
	}

	fmt.Fprintf(w, "group %s  state %s  protocol %s/%s  members %d\n", name, g.State, g.ProtocolType, g.Protocol, len(g.Members))
	if len(g.Members) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "MEMBER\tINSTANCE\tCLIENT\tHOST")
		for _, m := range g.Members {
			inst := "-"
			if m.InstanceID != nil {
				inst = *m.InstanceID
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.MemberID, inst, m.ClientID, m.ClientHost)
		}
		tw.Flush()
	}
	sort.Slice(tps, func(i, j int) bool {
		if tps[i].topic != tps[j].topic {
			return tps[i].topic < tps[j].topic
		}
		return tps[i].part < tps[j].part
	})
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCOMMITTED\tHIGH WATERMARK\tLAG\tMEMBER")
	for _, k := range tps {
		c, h := committed[k], hw[k]
		lag := "-"
		if c >= 0 {
			lag = fmt.Sprint(max(h-c, 0))
		}
		cs := "-"
		if c >= 0 {
			cs = fmt.Sprint(c)
		}
		m := owner[k]
		if m == "" {
			m = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\n", k.topic, k.part, cs, h, lag, m)
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
