package ingest

// ListGroups: v0-v5 served
// * Every group with members or committed offsets (those known only by
//   their offsets, after a restart, as Empty). v4 filters by state, v5 by
//   type: every group is "classic". Filters match case-insensitively.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleListGroups(req *kmsg.ListGroupsRequest) func(context.Context) kmsg.Response {
	return func(ctx context.Context) kmsg.Response { return s.groups.ListGroups(ctx, req) }
}
