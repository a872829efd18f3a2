package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const aclUsage = `usage: strata acl add    (--allow-principal P | --deny-principal P) --operation OP[,OP] RESOURCE [--host H] [--resource-pattern-type literal|prefixed]
       strata acl list   [RESOURCE] [--principal P]
       strata acl remove (--allow-principal P | --deny-principal P) --operation OP[,OP] RESOURCE [--host H] [--resource-pattern-type literal|prefixed]
RESOURCE is --topic NAME, --group NAME, --transactional-id ID or --cluster
(NAME "*" means every one). Operations are Kafka's: READ, WRITE, CREATE,
DELETE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS,
IDEMPOTENT_WRITE, ALL. Principals are Type:name (User:alice, User:*).
ACLs take effect with strata serve --authorizer acl. Every subcommand takes
--bootstrap host:port (default 127.0.0.1:9092, env STRATA_BOOTSTRAP) and
--timeout; the caller needs ALTER (add, remove) or DESCRIBE (list) on the
cluster, or to be a super user.
`

type aclSpec struct {
	rt   kmsg.ACLResourceType
	name string
	pt   kmsg.ACLResourcePatternType
}

func aclCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("acl: want a subcommand: add, list or remove")
	}
	sub := args[0]
	if isHelp(sub) {
		fmt.Fprint(stdout, aclUsage)
		return nil
	}
	a := newAdminCmd("acl "+sub, stderr)
	allow := a.fs.String("allow-principal", "", "principal to allow (add, remove)")
	deny := a.fs.String("deny-principal", "", "principal to deny (add, remove)")
	principal := a.fs.String("principal", "", "list only this principal's ACLs (list)")
	ops := a.fs.String("operation", "", "operations, comma-separated (add, remove)")
	topic := a.fs.String("topic", "", "a topic resource")
	group := a.fs.String("group", "", "a consumer group resource")
	txn := a.fs.String("transactional-id", "", "a transactional id resource")
	cluster := a.fs.Bool("cluster", false, "the cluster resource")
	host := a.fs.String("host", "*", "client IP the ACL applies to (add, remove)")
	pattern := a.fs.String("resource-pattern-type", "literal", "literal or prefixed")
	if err := a.parse(args[1:]); err != nil {
		return err
	}
	if sub != "add" && sub != "list" && sub != "remove" {
		return fmt.Errorf("acl: unknown subcommand %q (want add, list or remove)", sub)
	}
	if len(a.args) > 0 {
		return fmt.Errorf("acl %s: unexpected argument %q", sub, a.args[0])
	}
	var res *aclSpec
	set := 0
	for _, c := range []struct {
		on   bool
		rt   kmsg.ACLResourceType
		name string
	}{
		{*topic != "", kmsg.ACLResourceTypeTopic, *topic},
		{*group != "", kmsg.ACLResourceTypeGroup, *group},
		{*txn != "", kmsg.ACLResourceTypeTransactionalId, *txn},
		{*cluster, kmsg.ACLResourceTypeCluster, "kafka-cluster"},
	} {
		if c.on {
			set++
			res = &aclSpec{rt: c.rt, name: c.name}
		}
	}
	if set > 1 {
		return fmt.Errorf("acl %s: name one resource (--topic, --group, --transactional-id or --cluster)", sub)
	}
	pt, err := kmsg.ParseACLResourcePatternType(strings.ToLower(*pattern))
	if err != nil || (pt != kmsg.ACLResourcePatternTypeLiteral && pt != kmsg.ACLResourcePatternTypePrefixed) {
		return fmt.Errorf("acl %s: --resource-pattern-type %q: want literal or prefixed", sub, *pattern)
	}
	if res != nil {
		res.pt = pt
	}
	var (
		perm     kmsg.ACLPermissionType
		who      string
		opList   []kmsg.ACLOperation
		explicit = sub != "list"
	)
	if explicit {
		if res == nil {
			return fmt.Errorf("acl %s: name a resource: --topic, --group, --transactional-id or --cluster", sub)
		}
		switch {
		case *allow != "" && *deny != "":
			return fmt.Errorf("acl %s: give --allow-principal or --deny-principal, not both", sub)
		case *allow != "":
			perm, who = kmsg.ACLPermissionTypeAllow, *allow
		case *deny != "":
			perm, who = kmsg.ACLPermissionTypeDeny, *deny
		default:
			return fmt.Errorf("acl %s: give --allow-principal or --deny-principal", sub)
		}
		if *ops == "" {
			return fmt.Errorf("acl %s: --operation is required", sub)
		}
		for _, o := range strings.Split(*ops, ",") {
			op, err := kmsg.ParseACLOperation(strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(strings.TrimSpace(o))))
			if err != nil || op <= kmsg.ACLOperationAny {
				return fmt.Errorf("acl %s: operation %q: want READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE or ALL", sub, o)
			}
			opList = append(opList, op)
		}
	}
	ctx, cl, done, err := a.dial()
	if err != nil {
		return err
	}
	defer done()
	switch sub {
	case "add":
		return aclAdd(ctx, cl, stdout, *res, who, *host, perm, opList)
	case "remove":
		return aclRemove(ctx, cl, stdout, *res, who, *host, perm, opList)
	default:
		return aclList(ctx, cl, stdout, res, *principal)
	}
}

func aclAdd(ctx context.Context, cl *kgo.Client, w io.Writer, res aclSpec, who, host string, perm kmsg.ACLPermissionType, ops []kmsg.ACLOperation) error {
	req := kmsg.NewPtrCreateACLsRequest()
	for _, op := range ops {
		c := kmsg.NewCreateACLsRequestCreation()
		c.ResourceType, c.ResourceName, c.ResourcePatternType = res.rt, res.name, res.pt
		c.Principal, c.Host, c.Operation, c.PermissionType = who, host, op, perm
		req.Creations = append(req.Creations, c)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("acl add: %w", err)
	}
	for _, r := range resp.Results {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			if r.ErrorMessage != nil {
				return fmt.Errorf("acl add: %v: %s", err, *r.ErrorMessage)
			}
			return fmt.Errorf("acl add: %v", err)
		}
	}
	fmt.Fprintf(w, "added %d ACL(s)\n", len(ops))
	return nil
}

func aclRemove(ctx context.Context, cl *kgo.Client, w io.Writer, res aclSpec, who, host string, perm kmsg.ACLPermissionType, ops []kmsg.ACLOperation) error {
	req := kmsg.NewPtrDeleteACLsRequest()
	for _, op := range ops {
		f := kmsg.NewDeleteACLsRequestFilter()
		f.ResourceType, f.ResourceName, f.ResourcePatternType = res.rt, kmsg.StringPtr(res.name), res.pt
		f.Principal, f.Host, f.Operation, f.PermissionType = kmsg.StringPtr(who), kmsg.StringPtr(host), op, perm
		req.Filters = append(req.Filters, f)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("acl remove: %w", err)
	}
	n := 0
	for _, r := range resp.Results {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			return fmt.Errorf("acl remove: %v", err)
		}
		n += len(r.MatchingACLs)
	}
	if n == 0 {
		return errors.New("acl remove: no such ACL")
	}
	fmt.Fprintf(w, "removed %d ACL(s)\n", n)
	return nil
}

func aclList(ctx context.Context, cl *kgo.Client, w io.Writer, res *aclSpec, principal string) error {
	req := kmsg.NewPtrDescribeACLsRequest()
	req.ResourceType, req.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
	req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	if res != nil {
		req.ResourceType, req.ResourceName, req.ResourcePatternType = res.rt, kmsg.StringPtr(res.name), kmsg.ACLResourcePatternTypeMatch
	}
	if principal != "" {
		req.Principal = kmsg.StringPtr(principal)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("acl list: %w", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return fmt.Errorf("acl list: %v", err)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RESOURCE\tNAME\tPATTERN\tPRINCIPAL\tHOST\tOPERATION\tPERMISSION")
	for _, r := range resp.Resources {
		for _, a := range r.ACLs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ResourceType.String(), r.ResourceName,
				r.ResourcePatternType.String(), a.Principal, a.Host, a.Operation.String(), a.PermissionType.String())
		}
	}
	return tw.Flush()
}
