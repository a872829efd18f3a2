package ingest

// SyncGroup: v0-v5 served
// * The leader's request carries every member's assignment, passed on as
//   opaque bytes (the broker is assignor-agnostic); a follower's answer
//   waits for the leader's request, on the connection's writer. A member
//   the leader left out gets an empty consumer assignment.
// * v5: ProtocolType and Protocol are checked when given
//   (INCONSISTENT_GROUP_PROTOCOL) and returned.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleSyncGroup(req *kmsg.SyncGroupRequest) func(context.Context) kmsg.Response {
	return func(ctx context.Context) kmsg.Response {
		if resp := s.groups.Sync(ctx, req); resp != nil {
			return resp
		}
		return nil // the client is gone: a typed nil would be written
	}
}
