package ingest

// Heartbeat: v0-v4 served
// * Keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to join
//   again, ILLEGAL_GENERATION and UNKNOWN_MEMBER_ID that it is out of date,
//   FENCED_INSTANCE_ID (v3+) that its static instance id was taken over.
// * Runs on the connection's writer, in order with the member's joins.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleHeartbeat(req *kmsg.HeartbeatRequest) func(context.Context) kmsg.Response {
	return func(context.Context) kmsg.Response { return s.groups.Heartbeat(req) }
}
