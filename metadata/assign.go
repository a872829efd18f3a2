package metadata

import (
	"encoding/binary"
)

// AssignedNode returns the live node that should lead tp: the one with the
// highest rendezvous hash of (node id, topic id, partition). Every node
// computes the same answer from the same live-node set, so no coordination
// is needed; when a node dies (its lease expires) only its partitions move,
// spread over the others. ok is false when the topic is unknown or no node
// is live.
func (s *Store) AssignedNode(tp TP) (Node, bool) {
	t, ok := s.cache.topicShared(tp.Topic)
	if !ok || tp.Partition < 0 || tp.Partition >= t.Partitions {
		return Node{}, false
	}
	var key [20]byte
	copy(key[:16], t.ID[:])
	binary.BigEndian.PutUint32(key[16:], uint32(tp.Partition))
	return rendezvous(s.cache.nodeList(), key[:])
}

// AssignedNodeFor returns the live node that should own an arbitrary key,
// such as a consumer group's name.
func (s *Store) AssignedNodeFor(key string) (Node, bool) {
	return rendezvous(s.cache.nodeList(), []byte(key))
}

func rendezvous(nodes []Node, key []byte) (Node, bool) {
	var best Node
	var bestScore uint64
	found := false
	for _, n := range nodes {
		var id [4]byte
		binary.BigEndian.PutUint32(id[:], uint32(n.ID))
		score := mix(fnv1a(fnv1a(fnvOffset, id[:]), key))
		if !found || score > bestScore || (score == bestScore && n.ID < best.ID) {
			best, bestScore, found = n, score, true
		}
	}
	return best, found
}

// FNV-1a, 64 bits (hash/fnv's New64a, without its allocation): every
// node must compute the same placement, so this must never change.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnv1a(h uint64, b []byte) uint64 {
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
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
