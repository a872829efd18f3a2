package ingest

// FindCoordinator: v0-v6 served
// * Each group has one coordinator: the live node rendezvous hashing of the
//   group id picks (metadata.AssignedNodeFor), as partitions are assigned.
//   Other nodes answer NOT_COORDINATOR for it. v4+ batch keys
//   (CoordinatorKeys), each answered on its own.
// * Transactional ids (key type 1, v1+) are placed the same way, by the
//   transaction coordinator (ingest/txn).
// * Share groups (2) and unknown types get INVALID_REQUEST with a message:
//   Strata has no share coordinator, and saying so fails the client at once
//   rather than after its retries.
// * After Close starts, COORDINATOR_NOT_AVAILABLE.
//
// The coordinator is made here for the server (newCoordinator) and closed
// by Server.Close.

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-io/strata/ingest/group"
	"github.com/strata-io/strata/metadata"
)

func (s *Server) handleFindCoordinator(req *kmsg.FindCoordinatorRequest) *kmsg.FindCoordinatorResponse {
	if req.Version >= 1 && req.CoordinatorType == 1 {
		return s.findTxnCoordinator(req)
	}
	return s.groups.FindCoordinator(req)
}

// newCoordinator makes the server's group coordinator from cfg.Groups, with
// this server's node id and advertised address. A configuration the
// coordinator refuses (or metrics that cannot be registered) is logged and
// replaced by the defaults rather than leaving the server without groups.
func newCoordinator(cfg Config, meta *metadata.Store, logger *slog.Logger, reg prometheus.Registerer) *group.Coordinator {
	gc := cfg.Groups
	gc.NodeID, gc.Host, gc.Port = cfg.NodeID, cfg.AdvertisedHost, cfg.AdvertisedPort
	if gc.Owner == nil {
		gc.Owner = func(g string) (int32, string, int32, bool) {
			n, ok := meta.AssignedNodeFor(groupOwnerKey(g))
			return n.ID, n.Host, n.Port, ok
		}
	}
	if gc.OwnershipVersion == nil {
		gc.OwnershipVersion = meta.NodesVersion
	}
	if gc.Serving == nil {
		gc.Serving = meta.HoldsLease
	}
	if gc.LeaseEpoch == nil {
		gc.LeaseEpoch = meta.LeaseEpoch
	}
	c, err := group.New(gc, meta, logger, reg)
	if err == nil {
		return c
	}
	logger.Error("group coordinator: configuration refused, using defaults", "err", err)
	// With the default configuration and no registry, New only fails for
	// a nil store, which meta (typed) never is.
	c, _ = group.New(group.Config{NodeID: gc.NodeID, Host: gc.Host, Port: gc.Port, Owner: gc.Owner, OwnershipVersion: gc.OwnershipVersion, Serving: gc.Serving, LeaseEpoch: gc.LeaseEpoch}, meta, logger, nil)
	return c
}
