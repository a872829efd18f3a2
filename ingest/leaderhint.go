package ingest

// Leader discovery (KIP-951). A partition a Produce (v10+) or Fetch (v16+)
// answers NOT_LEADER_OR_FOLLOWER carries its current leader (CurrentLeader:
// id and epoch) when this node knows it from etcd, and the response lists
// the address of every leader it names (NodeEndpoints; Brokers in kmsg) on
// the listener the request came in on, so the client moves there without a
// Metadata round trip first. Clients act only on a hint with an epoch newer
// than the one they know; a partition whose leader is not known yet keeps
// Kafka's default (-1, -1), and the client refreshes its metadata as before.

import (
	"slices"

	"github.com/strata-io/strata/metadata"
)

// leaderHint returns tp's current leader as this node knows it from etcd:
// the live node metadata assigns tp to (the leader Metadata reports), with
// the epoch of the leadership it holds. ok is false when that node is this
// one or unknown, or holds no leadership of tp yet.
func (s *Server) leaderHint(tp metadata.TP) (id, epoch int32, ok bool) {
	n, ok := s.meta.AssignedNode(tp)
	if !ok || n.ID == s.cfg.NodeID {
		return -1, -1, false
	}
	l, ok := s.meta.Leader(tp)
	if !ok || l.NodeID != n.ID {
		return -1, -1, false
	}
	return l.NodeID, l.Epoch, true
}

// nodeEndpoint is a node's address for NodeEndpoints.
type nodeEndpoint struct {
	id   int32
	host string
	port int32
	rack *string // Strata nodes have no rack
}

// leaderEndpoints returns the addresses of the nodes ids (which it sorts
// and may reorder) on listener, the one the request came in on ("": the
// primary), once each, by id. A node without an address there is left out.
func (s *Server) leaderEndpoints(listener string, ids []int32) []nodeEndpoint {
	if len(ids) == 0 {
		return nil
	}
	if listener == "" && len(s.cfg.Listeners) > 0 {
		listener = s.cfg.Listeners[0].Name
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	nodes := s.meta.Nodes()
	out := make([]nodeEndpoint, 0, len(ids))
	for _, id := range ids {
		if host, port, ok := s.addrOn(listener, id, nodes); ok {
			out = append(out, nodeEndpoint{id: id, host: host, port: port})
		}
	}
	return out
}
