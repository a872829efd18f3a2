package metadata

import (
	"encoding/binary"
	"hash/fnv"
)

// AssignedNode returns the live node that should lead tp: the one with the
// highest rendezvous hash of (node id, topic id, partition). Every node
// computes the same answer from the same live-node set, so no coordination
// is needed; when a node dies (its lease expires) only its partitions move,
// spread over the others. ok is false when the topic is unknown or no node
// is live.
func (s *Store) AssignedNode(tp TP) (Node, bool) {
	t, ok := s.Topic(tp.Topic)
	if !ok || tp.Partition < 0 || tp.Partition >= t.Partitions {
		return Node{}, false
	}
	var key [20]byte
	copy(key[:16], t.ID[:])
	binary.BigEndian.PutUint32(key[16:], uint32(tp.Partition))
	return rendezvous(s.Nodes(), key[:])
}

// AssignedNodeFor returns the live node that should own an arbitrary key,
// such as a consumer group's name.
func (s *Store) AssignedNodeFor(key string) (Node, bool) {
	return rendezvous(s.Nodes(), []byte(key))
}

func rendezvous(nodes []Node, key []byte) (Node, bool) {
	var best Node
	var bestScore uint64
	found := false
	for _, n := range nodes {
		h := fnv.New64a()
		var id [4]byte
		binary.BigEndian.PutUint32(id[:], uint32(n.ID))
		h.Write(id[:])
		h.Write(key)
		score := mix(h.Sum64())
		if !found || score > bestScore || (score == bestScore && n.ID < best.ID) {
			best, bestScore, found = n, score, true
		}
	}
	return best, found
}

// mix is a 64-bit finalizer (from SplitMix64) so that FNV's weak high bits
// do not bias which node wins.
func mix(z uint64) uint64 {
	z ^= z >> 30
	z *= 0xbf58476d1ce4e5b9
	z ^= z >> 27
	z *= 0x94d049bb133111eb
	z ^= z >> 31
	return z
}
