package ingest

// LeaveGroup: v0-v5 served
// * v0-v2 name one member (its error is the top-level error); v3+ a batch,
//   each member by member id or, for the admin client's removal of static
//   members, by instance id alone. A member leaving a stable group starts a
//   rebalance; the last one leaving empties the group, which can be joined
//   again at once.
// * Runs on the connection's writer, in order with the member's joins.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleLeaveGroup(req *kmsg.LeaveGroupRequest) func(context.Context) kmsg.Response {
	return func(context.Context) kmsg.Response { return s.groups.Leave(req) }
}
