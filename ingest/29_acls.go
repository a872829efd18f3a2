package ingest

// DescribeAcls (29), CreateAcls (30) and DeleteAcls (31), v0-v3: ACL
// bindings in Kafka's model, stored in etcd (metadata.ACL; every node's
// authorizer follows them through its watch). v0 knows only LITERAL
// patterns. A binding Kafka would refuse (an ANY or UNKNOWN field, a
// principal not of the form Type:name, a cluster resource not named
// kafka-cluster, an empty name or host) is refused with INVALID_REQUEST and
// a message; nothing of the request is stored then for that binding.

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
)

// validBinding checks a binding to create; "" when it is fine.
func validBinding(a metadata.ACL) string {
	switch kmsg.ACLResourceType(a.ResourceType) {
	case kmsg.ACLResourceTypeTopic, kmsg.ACLResourceTypeGroup, kmsg.ACLResourceTypeCluster,
		kmsg.ACLResourceTypeTransactionalId, kmsg.ACLResourceTypeDelegationToken, kmsg.ACLResourceTypeUser:
	default:
		return fmt.Sprintf("resource type %d: want TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID, DELEGATION_TOKEN or USER", a.ResourceType)
	}
	switch kmsg.ACLResourcePatternType(a.PatternType) {
	case kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLResourcePatternTypePrefixed:
	default:
		return fmt.Sprintf("pattern type %d: want LITERAL or PREFIXED", a.PatternType)
	}
	if a.ResourceName == "" {
		return "empty resource name"
	}
	if kmsg.ACLResourceType(a.ResourceType) == kmsg.ACLResourceTypeCluster && (a.ResourceName != ClusterName || kmsg.ACLResourcePatternType(a.PatternType) != kmsg.ACLResourcePatternTypeLiteral) {
		return "the cluster resource is the literal name kafka-cluster"
	}
	if typ, name, ok := strings.Cut(a.Principal, ":"); !ok || typ == "" || name == "" {
		return fmt.Sprintf("principal %q: want Type:name, such as User:alice or User:*", a.Principal)
	}
	if a.Host == "" {
		return "empty host (use * for every host)"
	}
	if op := kmsg.ACLOperation(a.Operation); op <= kmsg.ACLOperationAny || op > kmsg.ACLOperationDescribeTokens {
		return fmt.Sprintf("operation %d is not a concrete operation", a.Operation)
	}
	if p := kmsg.ACLPermissionType(a.Permission); p != kmsg.ACLPermissionTypeAllow && p != kmsg.ACLPermissionTypeDeny {
		return fmt.Sprintf("permission %d: want ALLOW or DENY", a.Permission)
	}
	return ""
}

func (s *Server) handleCreateACLs(ctx context.Context, req *kmsg.CreateACLsRequest) *kmsg.CreateACLsResponse {
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	var good []metadata.ACL
	var goodIdx []int
	for i, c := range req.Creations {
		pt := c.ResourcePatternType
		if req.Version == 0 {
			pt = kmsg.ACLResourcePatternTypeLiteral
		}
		a := metadata.ACL{ResourceType: int8(c.ResourceType), ResourceName: c.ResourceName, PatternType: int8(pt),
			Principal: c.Principal, Host: c.Host, Operation: int8(c.Operation), Permission: int8(c.PermissionType)}
		rr := kmsg.NewCreateACLsResponseResult()
		if msg := validBinding(a); msg != "" {
			rr.ErrorCode, rr.ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr(msg)
		} else {
			good = append(good, a)
			goodIdx = append(goodIdx, i)
		}
		resp.Results = append(resp.Results, rr)
	}
	if err := s.meta.CreateACLs(ctx, good); err != nil {
		for _, i := range goodIdx {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = kerr.UnknownServerError.Code, kmsg.StringPtr("storing ACLs in etcd: "+err.Error())
		}
	} else if len(good) > 0 {
		s.log.Info("ACLs created", "count", len(good))
	}
	return resp
}

// aclFilter is a Describe or Delete filter.
type aclFilter struct {
	rt        kmsg.ACLResourceType
	name      *string
	pt        kmsg.ACLResourcePatternType
	principal *string
	host      *string
	op        kmsg.ACLOperation
	perm      kmsg.ACLPermissionType
}

func (f aclFilter) matches(a metadata.ACL) bool {
	if f.rt != kmsg.ACLResourceTypeAny && int8(f.rt) != a.ResourceType {
		return false
	}
	switch f.pt {
	case kmsg.ACLResourcePatternTypeAny:
		if f.name != nil && *f.name != a.ResourceName {
			return false
		}
	case kmsg.ACLResourcePatternTypeMatch:
		// Bindings that apply to the named resource.
		if f.name != nil {
			switch kmsg.ACLResourcePatternType(a.PatternType) {
			case kmsg.ACLResourcePatternTypeLiteral:
				if a.ResourceName != *f.name && a.ResourceName != "*" {
					return false
				}
			case kmsg.ACLResourcePatternTypePrefixed:
				if !strings.HasPrefix(*f.name, a.ResourceName) {
					return false
				}
			}
		}
	default:
		if int8(f.pt) != a.PatternType || (f.name != nil && *f.name != a.ResourceName) {
			return false
		}
	}
	if f.principal != nil && *f.principal != a.Principal {
		return false
	}
	if f.host != nil && *f.host != a.Host {
		return false
	}
	if f.op != kmsg.ACLOperationAny && int8(f.op) != a.Operation {
		return false
	}
	return f.perm == kmsg.ACLPermissionTypeAny || int8(f.perm) == a.Permission
}

func (s *Server) handleDescribeACLs(ctx context.Context, req *kmsg.DescribeACLsRequest) *kmsg.DescribeACLsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	pt := req.ResourcePatternType
	if req.Version == 0 {
		pt = kmsg.ACLResourcePatternTypeLiteral
	}
	f := aclFilter{rt: req.ResourceType, name: req.ResourceName, pt: pt, principal: req.Principal, host: req.Host, op: req.Operation, perm: req.PermissionType}
	all, err := s.meta.StoredACLs(ctx)
	if err != nil {
		resp.ErrorCode, resp.ErrorMessage = kerr.UnknownServerError.Code, kmsg.StringPtr("reading ACLs from etcd: "+err.Error())
		return resp
	}
	type res struct {
		rt   int8
		name string
		pt   int8
	}
	byRes := map[res][]metadata.ACL{}
	for _, a := range all {
		if f.matches(a) {
			k := res{a.ResourceType, a.ResourceName, a.PatternType}
			byRes[k] = append(byRes[k], a)
		}
	}
	keys := make([]res, 0, len(byRes))
	for k := range byRes {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].rt != keys[j].rt {
			return keys[i].rt < keys[j].rt
		}
		if keys[i].name != keys[j].name {
			return keys[i].name < keys[j].name
		}
		return keys[i].pt < keys[j].pt
	})
	for _, k := range keys {
		rr := kmsg.NewDescribeACLsResponseResource()
		rr.ResourceType, rr.ResourceName, rr.ResourcePatternType = kmsg.ACLResourceType(k.rt), k.name, kmsg.ACLResourcePatternType(k.pt)
		acls := byRes[k]
		sort.Slice(acls, func(i, j int) bool { return acls[i].ID() < acls[j].ID() })
		for _, a := range acls {
			ra := kmsg.NewDescribeACLsResponseResourceACL()
			ra.Principal, ra.Host, ra.Operation, ra.PermissionType = a.Principal, a.Host, kmsg.ACLOperation(a.Operation), kmsg.ACLPermissionType(a.Permission)
			rr.ACLs = append(rr.ACLs, ra)
		}
		resp.Resources = append(resp.Resources, rr)
	}
	return resp
}

func (s *Server) handleDeleteACLs(ctx context.Context, req *kmsg.DeleteACLsRequest) *kmsg.DeleteACLsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	all, err := s.meta.StoredACLs(ctx)
	if err != nil {
		for range req.Filters {
			rr := kmsg.NewDeleteACLsResponseResult()
			rr.ErrorCode, rr.ErrorMessage = kerr.UnknownServerError.Code, kmsg.StringPtr("reading ACLs from etcd: "+err.Error())
			resp.Results = append(resp.Results, rr)
		}
		return resp
	}
	ids := make([]string, 0, len(all))
	for id := range all {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var del []string
	deleted := map[string]bool{}
	for _, fr := range req.Filters {
		pt := fr.ResourcePatternType
		if req.Version == 0 {
			pt = kmsg.ACLResourcePatternTypeLiteral
		}
		f := aclFilter{rt: fr.ResourceType, name: fr.ResourceName, pt: pt, principal: fr.Principal, host: fr.Host, op: fr.Operation, perm: fr.PermissionType}
		rr := kmsg.NewDeleteACLsResponseResult()
		for _, id := range ids {
			a := all[id]
			if !f.matches(a) {
				continue
			}
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			m.ResourceType, m.ResourceName, m.ResourcePatternType = kmsg.ACLResourceType(a.ResourceType), a.ResourceName, kmsg.ACLResourcePatternType(a.PatternType)
			m.Principal, m.Host, m.Operation, m.PermissionType = a.Principal, a.Host, kmsg.ACLOperation(a.Operation), kmsg.ACLPermissionType(a.Permission)
			rr.MatchingACLs = append(rr.MatchingACLs, m)
			if !deleted[id] {
				deleted[id] = true
				del = append(del, id)
			}
		}
		resp.Results = append(resp.Results, rr)
	}
	if err := s.meta.DeleteACLs(ctx, del); err != nil {
		for i := range resp.Results {
			resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = kerr.UnknownServerError.Code, kmsg.StringPtr("deleting ACLs in etcd: "+err.Error())
			resp.Results[i].MatchingACLs = nil
		}
	} else if len(del) > 0 {
		s.log.Info("ACLs deleted", "count", len(del))
	}
	return resp
}
