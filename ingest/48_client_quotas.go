package ingest

// DescribeClientQuotas (48) and AlterClientQuotas (49), v0-v1: client
// quotas on users, client ids or both (named or <default>), stored in etcd
// and followed by every node. Strata enforces producer_byte_rate and
// consumer_byte_rate (quota.go); other keys and ip entities are refused with
// INVALID_REQUEST and a message, so nobody believes a quota is applied when
// it is not.

import (
	"context"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/metadata"
)

// Quota keys Strata enforces.
const (
	quotaProduce = "producer_byte_rate"
	quotaFetch   = "consumer_byte_rate"
)

func (s *Server) handleDescribeClientQuotas(req *kmsg.DescribeClientQuotasRequest) *kmsg.DescribeClientQuotasResponse {
	resp := req.ResponseKind().(*kmsg.DescribeClientQuotasResponse)
	for _, c := range req.Components {
		if c.EntityType != "user" && c.EntityType != "client-id" && c.EntityType != "ip" {
			resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr(fmt.Sprintf("unknown entity type %q", c.EntityType))
			return resp
		}
		if c.MatchType == 0 && c.Match == nil {
			resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr("an exact match needs a name")
			return resp
		}
	}
	_, all := s.meta.Quotas()
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		e, err := metadata.ParseQuotaEntity(k)
		if err != nil {
			continue
		}
		parts := map[string]*string{}
		if e.User != nil {
			parts["user"] = e.User
		}
		if e.ClientID != nil {
			parts["client-id"] = e.ClientID
		}
		ok := true
		for _, c := range req.Components {
			name, has := parts[c.EntityType]
			switch {
			case !has:
				ok = false
			case c.MatchType == 0: // exact
				ok = ok && *name == *c.Match && *name != ""
			case c.MatchType == 1: // default
				ok = ok && *name == ""
			}
		}
		if req.Strict && len(parts) != len(req.Components) {
			ok = false
		}
		if !ok {
			continue
		}
		entry := kmsg.NewDescribeClientQuotasResponseEntry()
		for _, typ := range []string{"user", "client-id"} {
			if name, has := parts[typ]; has {
				en := kmsg.NewDescribeClientQuotasResponseEntryEntity()
				en.Type = typ
				if *name != "" {
					en.Name = kmsg.StringPtr(*name)
				}
				entry.Entity = append(entry.Entity, en)
			}
		}
		vkeys := make([]string, 0, len(all[k]))
		for vk := range all[k] {
			vkeys = append(vkeys, vk)
		}
		sort.Strings(vkeys)
		for _, vk := range vkeys {
			v := kmsg.NewDescribeClientQuotasResponseEntryValue()
			v.Key, v.Value = vk, all[k][vk]
			entry.Values = append(entry.Values, v)
		}
		resp.Entries = append(resp.Entries, entry)
	}
	return resp
}

func (s *Server) handleAlterClientQuotas(ctx context.Context, req *kmsg.AlterClientQuotasRequest) *kmsg.AlterClientQuotasResponse {
	resp := req.ResponseKind().(*kmsg.AlterClientQuotasResponse)
	for _, in := range req.Entries {
		out := kmsg.NewAlterClientQuotasResponseEntry()
		var e metadata.QuotaEntity
		bad := func(format string, args ...any) {
			if out.ErrorCode == 0 {
				out.ErrorCode, out.ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr(fmt.Sprintf(format, args...))
			}
		}
		for _, en := range in.Entity {
			oe := kmsg.NewAlterClientQuotasResponseEntryEntity()
			oe.Type, oe.Name = en.Type, en.Name
			out.Entity = append(out.Entity, oe)
			name := ""
			if en.Name != nil {
				name = *en.Name
				if name == "" {
					bad("an entity name must not be empty (null is the default entity)")
				}
			}
			switch en.Type {
			case "user":
				if e.User != nil {
					bad("user given twice")
				}
				e.User = &name
			case "client-id":
				if e.ClientID != nil {
					bad("client-id given twice")
				}
				e.ClientID = &name
			case "ip":
				bad("ip quotas (connection_creation_rate) are not supported; limit connections with --max-connections-per-ip")
			default:
				bad("unknown entity type %q", en.Type)
			}
		}
		if len(in.Entity) == 0 {
			bad("no entity")
		}
		set := map[string]float64{}
		var remove []string
		for _, op := range in.Ops {
			if op.Key != quotaProduce && op.Key != quotaFetch {
				bad("quota %q is not supported: Strata enforces %s and %s", op.Key, quotaProduce, quotaFetch)
				continue
			}
			if op.Remove {
				remove = append(remove, op.Key)
				continue
			}
			if op.Value <= 0 {
				bad("%s must be positive, not %v", op.Key, op.Value)
				continue
			}
			set[op.Key] = op.Value
		}
		if out.ErrorCode == 0 && !req.ValidateOnly {
			if err := s.meta.AlterQuotas(ctx, e, set, remove); err != nil {
				out.ErrorCode, out.ErrorMessage = kerr.UnknownServerError.Code, kmsg.StringPtr(err.Error())
			} else {
				s.log.Info("client quotas altered", "entity", e.Key(), "set", set, "removed", remove)
			}
		}
		resp.Entries = append(resp.Entries, out)
	}
	return resp
}
