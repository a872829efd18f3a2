package ingest

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
)

func acl(rt kmsg.ACLResourceType, name string, pt kmsg.ACLResourcePatternType, principal, host string, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) metadata.ACL {
	return metadata.ACL{ResourceType: int8(rt), ResourceName: name, PatternType: int8(pt), Principal: principal, Host: host, Operation: int8(op), Permission: int8(perm)}
}

// The authorizer follows Kafka's rules: deny beats allow, prefixed and
// wildcard patterns apply, READ/WRITE/DELETE/ALTER imply DESCRIBE, host
// filters, super users, and what happens to resources no ACL mentions.
func TestAuthorizerRules(t *testing.T) {
	n := startNode(t, func(c *Config) {
		c.Authorizer = Authorizer{Enabled: true, SuperUsers: []string{"User:root"}}
	})
	const (
		topic   = kmsg.ACLResourceTypeTopic
		group   = kmsg.ACLResourceTypeGroup
		lit     = kmsg.ACLResourcePatternTypeLiteral
		pre     = kmsg.ACLResourcePatternTypePrefixed
		allow   = kmsg.ACLPermissionTypeAllow
		deny    = kmsg.ACLPermissionTypeDeny
		read    = kmsg.ACLOperationRead
		write   = kmsg.ACLOperationWrite
		desc    = kmsg.ACLOperationDescribe
		alterCf = kmsg.ACLOperationAlterConfigs
		descCf  = kmsg.ACLOperationDescribeConfigs
	)
	acls := []metadata.ACL{
		acl(topic, "orders-", pre, "User:alice", "*", write, allow),
		acl(topic, "orders-secret", lit, "User:alice", "*", write, deny),
		acl(topic, "orders-secret", lit, "User:alice", "*", read, allow),
		acl(topic, "*", lit, "User:*", "*", desc, allow),
		acl(topic, "audit", lit, "User:bob", "10.0.0.7", read, allow),
		acl(topic, "cfg", lit, "User:bob", "*", alterCf, allow),
		acl(group, "g", lit, "User:alice", "*", kmsg.ACLOperationAll, allow),
		acl(group, "g", lit, "User:mallory", "*", kmsg.ACLOperationAll, deny),
		acl(group, "g", lit, "User:*", "*", read, allow),
	}
	if err := n.meta.CreateACLs(t.Context(), acls); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, got := n.meta.ACLs(); return len(got) == len(acls) })
	alice := caller{principal: "User:alice", host: "10.0.0.1"}
	bob := caller{principal: "User:bob", host: "10.0.0.1"}
	bobAt7 := caller{principal: "User:bob", host: "10.0.0.7"}
	mallory := caller{principal: "User:mallory", host: "10.0.0.1"}
	root := caller{principal: "User:root", host: "10.0.0.9"}
	for _, c := range []struct {
		who  caller
		op   kmsg.ACLOperation
		rt   kmsg.ACLResourceType
		name string
		want bool
	}{
		{alice, write, topic, "orders-eu", true},      // prefixed allow
		{alice, write, topic, "orders-secret", false}, // literal deny beats prefixed allow
		{alice, read, topic, "orders-secret", true},
		{alice, desc, topic, "orders-eu", true},  // WRITE implies DESCRIBE (and User:* allows it)
		{alice, write, topic, "invoices", false}, // only the wildcard DESCRIBE matches
		{bob, desc, topic, "invoices", true},     // User:* on *
		{bob, read, topic, "audit", false},       // host filter
		{bobAt7, read, topic, "audit", true},
		{bob, descCf, topic, "cfg", true}, // ALTER_CONFIGS implies DESCRIBE_CONFIGS
		{bob, alterCf, topic, "cfg", true},
		{alice, kmsg.ACLOperationDelete, group, "g", true}, // ALL
		{mallory, read, group, "g", false},                 // deny ALL beats User:* READ
		{bob, read, group, "g", true},
		{bob, read, group, "other", false}, // no ACL: denied by default
		{root, kmsg.ACLOperationAlter, kmsg.ACLResourceTypeCluster, ClusterName, true},
		{caller{principal: anonymous, internal: true}, kmsg.ACLOperationClusterAction, kmsg.ACLResourceTypeCluster, ClusterName, true},
		{caller{principal: anonymous}, kmsg.ACLOperationClusterAction, kmsg.ACLResourceTypeCluster, ClusterName, false},
	} {
		if got := n.srv.authz.allowed(c.who, c.op, c.rt, c.name); got != c.want {
			t.Errorf("%s %s %s %q from %s: allowed %v, want %v", c.who.principal, c.op, c.rt, c.name, c.who.host, got, c.want)
		}
	}
	// allow.everyone.if.no.acl.found opens resources no ACL mentions, only.
	n.srv.authz.cfg.AllowEveryoneIfNoACLFound = true
	if !n.srv.authz.allowed(bob, read, group, "other") {
		t.Error("a group no ACL mentions is closed with AllowEveryoneIfNoACLFound")
	}
	if n.srv.authz.allowed(mallory, read, group, "g") {
		t.Error("AllowEveryoneIfNoACLFound opened a resource that has ACLs")
	}
	// Off: everything allowed.
	n.srv.authz.cfg.Enabled = false
	if !n.srv.authz.allowed(mallory, read, group, "g") {
		t.Error("a disabled authorizer refused")
	}
}

// TestMetadataV0AllTopicsIsFiltered: Metadata v0 asks for every topic with
// an empty list (null from v1); either way the authorizer shows only the
// topics the caller may describe.
func TestMetadataV0AllTopicsIsFiltered(t *testing.T) {
	n := startNode(t, func(c *Config) { c.Authorizer = Authorizer{Enabled: true} })
	n.createTopic("secret", 1)
	for _, v := range []int16{0, 1, 12} {
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(v)
		if v > 0 {
			req.Topics = nil
		} else {
			req.Topics = []kmsg.MetadataRequestTopic{}
		}
		frame := kmsg.NewRequestFormatter().AppendRequest(nil, req, 1)[4:]
		r, err := parseRequest(frame)
		if err != nil {
			t.Fatal(err)
		}
		r.who = caller{principal: anonymous, host: "127.0.0.1"}
		resp, later, err := n.srv.dispatchAuthorized(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		if later != nil {
			resp = later(context.Background())
		}
		for _, tp := range resp.(*kmsg.MetadataResponse).Topics {
			if deref(tp.Topic) == "secret" {
				t.Errorf("Metadata v%d for all topics shows %q to a caller without DESCRIBE", v, "secret")
			}
		}
	}
}
