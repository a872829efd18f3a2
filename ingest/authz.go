package ingest

import (
	"net"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
)

// Authorization, with Kafka's model and rules (its AclAuthorizer /
// StandardAuthorizer):
//
//   - a binding matches a resource when the types are equal and its
//     pattern is LITERAL with the same name or "*", or PREFIXED with a
//     prefix of the name;
//   - it applies to a request when its principal is the caller's or
//     "User:*", and its host the caller's IP or "*";
//   - a matching DENY for the operation (or ALL) refuses, whatever
//     allows it;
//   - otherwise a matching ALLOW for the operation, for ALL, or for an
//     operation that implies it (READ, WRITE, DELETE and ALTER imply
//     DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS) permits;
//   - a resource no binding matches at all is allowed only with
//     AllowEveryoneIfNoACLFound;
//   - super users are always allowed.
//
// Connections on the inter-node listener are always allowed
// CLUSTER_ACTION on the cluster: it is the channel nodes use among
// themselves (transaction markers).

// Authorizer configures authorization. The zero value allows everything
// (the laptop default).
type Authorizer struct {
	// Enabled turns ACL checks on (--authorizer acl).
	Enabled bool
	// SuperUsers are principals allowed everything ("User:admin").
	SuperUsers []string
	// AllowEveryoneIfNoACLFound allows access to resources no ACL
	// mentions, as Kafka's allow.everyone.if.no.acl.found.
	AllowEveryoneIfNoACLFound bool
}

// ClusterName is the name of the cluster resource, as Kafka names it.
const ClusterName = "kafka-cluster"

// caller is who a request comes from.
type caller struct {
	principal string
	host      string // the client's IP
	internal  bool   // on the inter-node listener
}

// aclIndex is the cached ACLs, indexed by resource type.
type aclIndex struct {
	version  int64
	literal  map[int8]map[string][]metadata.ACL
	prefixed map[int8][]metadata.ACL
}

type authorizer struct {
	cfg   Authorizer
	meta  *metadata.Store
	super map[string]bool

	mu  sync.Mutex
	idx *aclIndex
}

func newAuthorizer(cfg Authorizer, meta *metadata.Store) *authorizer {
	a := &authorizer{cfg: cfg, meta: meta, super: map[string]bool{}}
	for _, u := range cfg.SuperUsers {
		a.super[strings.TrimSpace(u)] = true
	}
	return a
}

func (a *authorizer) index() *aclIndex {
	current := a.meta.ACLVersion()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.idx != nil && a.idx.version == current {
		return a.idx
	}
	version, acls := a.meta.ACLs()
	idx := &aclIndex{version: version, literal: map[int8]map[string][]metadata.ACL{}, prefixed: map[int8][]metadata.ACL{}}
	for _, b := range acls {
		switch kmsg.ACLResourcePatternType(b.PatternType) {
		case kmsg.ACLResourcePatternTypeLiteral:
			m := idx.literal[b.ResourceType]
			if m == nil {
				m = map[string][]metadata.ACL{}
				idx.literal[b.ResourceType] = m
			}
			m[b.ResourceName] = append(m[b.ResourceName], b)
		case kmsg.ACLResourcePatternTypePrefixed:
			idx.prefixed[b.ResourceType] = append(idx.prefixed[b.ResourceType], b)
		}
	}
	a.idx = idx
	return idx
}

// implies reports whether a binding for op grants want.
func implies(op, want kmsg.ACLOperation) bool {
	switch {
	case op == want, op == kmsg.ACLOperationAll:
		return true
	case want == kmsg.ACLOperationDescribe:
		return op == kmsg.ACLOperationRead || op == kmsg.ACLOperationWrite || op == kmsg.ACLOperationDelete || op == kmsg.ACLOperationAlter
	case want == kmsg.ACLOperationDescribeConfigs:
		return op == kmsg.ACLOperationAlterConfigs
	}
	return false
}

// allowed decides whether c may do op on the resource (type, name).
func (a *authorizer) allowed(c caller, op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	if !a.cfg.Enabled || a.super[c.principal] {
		return true
	}
	if c.internal && rt == kmsg.ACLResourceTypeCluster && op == kmsg.ACLOperationClusterAction {
		return true
	}
	idx := a.index()
	var matching []metadata.ACL
	matching = append(matching, idx.literal[int8(rt)][name]...)
	matching = append(matching, idx.literal[int8(rt)]["*"]...)
	for _, b := range idx.prefixed[int8(rt)] {
		if strings.HasPrefix(name, b.ResourceName) {
			matching = append(matching, b)
		}
	}
	if len(matching) == 0 {
		return a.cfg.AllowEveryoneIfNoACLFound
	}
	applies := func(b metadata.ACL) bool {
		return (b.Principal == c.principal || b.Principal == "User:*") && (b.Host == "*" || b.Host == c.host)
	}
	for _, b := range matching {
		if kmsg.ACLPermissionType(b.Permission) == kmsg.ACLPermissionTypeDeny && applies(b) &&
			(kmsg.ACLOperation(b.Operation) == op || kmsg.ACLOperation(b.Operation) == kmsg.ACLOperationAll) {
			return false
		}
	}
	for _, b := range matching {
		if kmsg.ACLPermissionType(b.Permission) == kmsg.ACLPermissionTypeAllow && applies(b) && implies(kmsg.ACLOperation(b.Operation), op) {
			return true
		}
	}
	return false
}

// callerOf names who sent r.
func (c *conn) caller() caller {
	host, _, _ := net.SplitHostPort(c.remote)
	return caller{principal: c.auth.principal, host: host, internal: c.auth.listener.Name == c.s.interNode()}
}

// interNode is the name of the inter-node listener (the primary).
func (s *Server) interNode() string {
	if len(s.cfg.Listeners) == 0 {
		return ProtocolPlaintext
	}
	return s.cfg.Listeners[0].Name
}
