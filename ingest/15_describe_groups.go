package ingest

// DescribeGroups: v0-v6 served
// * State, protocol type, and members (client id, instance id v4+); a
//   Stable group's members also carry their metadata and assignment, and its
//   protocol is named, as in Kafka. A group known only by committed offsets
//   is Empty; an unknown group is Dead, and from v6 GROUP_ID_NOT_FOUND.
// * ClientHost is the member's address when it joined ("/" and the IP), as
//   Kafka shows it.
// * AuthorizedOperations (v3+, when asked): READ, DELETE and DESCRIBE, as
//   there are no ACLs.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleDescribeGroups(req *kmsg.DescribeGroupsRequest) func(context.Context) kmsg.Response {
	return func(ctx context.Context) kmsg.Response { return s.groups.DescribeGroups(ctx, req) }
}
