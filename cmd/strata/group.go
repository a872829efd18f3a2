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

	"github.com/strata-io/strata/cmd/node/console"
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
	g, err := console.DescribeGroup(ctx, cl, name)
	if err != nil {
		return fmt.Errorf("group describe %s: %v", name, err)
	}
	fmt.Fprintf(w, "group %s  state %s  protocol %s/%s  members %d  lag %d\n", name, g.State, g.ProtocolType, g.Protocol, len(g.Members), g.Lag)
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
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCOMMITTED\tHIGH WATERMARK\tLAG\tMEMBER")
	dash := func(v int64) string {
		if v < 0 {
			return "-"
		}
		return fmt.Sprint(v)
	}
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
