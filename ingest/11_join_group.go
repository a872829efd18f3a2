package ingest

// JoinGroup: v0-v9 served
// * Advertised from v0 (Kafka 4.0 starts at v2): librdkafka 2.0.2 enables
//   consumer groups only when v0 is in the range.
// * The classic protocol (ingest/group): the answer waits until the join
//   phase ends (every member joined, or the rebalance timeout passed), on
//   the connection's writer, so nothing else of this connection is answered
//   meanwhile, as in Kafka. A client that goes away is not answered.
// * v0: the session timeout is also the rebalance timeout. v4+: a member
//   without id is given one with MEMBER_ID_REQUIRED (KIP-394). v5+: static
//   members (group.instance.id, KIP-345). v9: SkipAssignment for a static
//   leader that rejoins without a rebalance (KIP-814).
// * Session timeouts outside 6 s - 30 min (Config.Groups):
//   INVALID_SESSION_TIMEOUT.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/ingest/group"
)

func (s *Server) handleJoinGroup(r *request, req *kmsg.JoinGroupRequest) func(context.Context) kmsg.Response {
	cl := group.Client{ID: clientID(r), Host: clientHost(r)}
	return func(ctx context.Context) kmsg.Response {
		if resp := s.groups.Join(ctx, cl, req); resp != nil {
			return resp
		}
		return nil // the client is gone: a typed nil would be written
	}
}
