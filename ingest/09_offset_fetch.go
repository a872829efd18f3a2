package ingest

// OffsetFetch: v0-v9 served
// * v0-v7 ask for one group, v8+ for several; a null topic list (v2+) asks
//   for every committed offset of the group. A partition without a commit is
//   offset -1, leader epoch -1, empty metadata, no error, as in Kafka.
// * Group-level errors are per partition before v2, top-level v2-v7, per
//   group v8+.
// * RequireStable (v7+) and the v9 member id and epoch need nothing: there
//   are no transactional offsets, and classic groups do not check them.
// * Runs on the connection's writer, after any commit sent before it.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleOffsetFetch(req *kmsg.OffsetFetchRequest) func(context.Context) kmsg.Response {
	return func(ctx context.Context) kmsg.Response { return s.groups.OffsetFetch(ctx, req) }
}
