package ingest

// DeleteGroups: v0-v2 served
// * An empty group is removed with its committed offsets (from etcd);
//   NON_EMPTY_GROUP while it has members, GROUP_ID_NOT_FOUND if unknown.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleDeleteGroups(req *kmsg.DeleteGroupsRequest) func(context.Context) kmsg.Response {
	return func(ctx context.Context) kmsg.Response { return s.groups.DeleteGroups(ctx, req) }
}
