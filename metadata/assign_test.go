package metadata

import (
	"fmt"
	"hash/fnv"
	"testing"
)

func TestRendezvousSpreadsAndMovesOnlyTheDeadNodesKeys(t *testing.T) {
	nodes := []Node{{ID: 0}, {ID: 1}, {ID: 2}}
	owner := map[string]int32{}
	count := map[int32]int{}
	for i := 0; i < 3000; i++ {
		k := fmt.Sprintf("key-%d", i)
		n, ok := rendezvous(nodes, []byte(k))
		if !ok {
			t.Fatal("no node")
		}
		owner[k] = n.ID
		count[n.ID]++
	}
	for id, c := range count {
		if c < 800 || c > 1200 {
			t.Fatalf("node %d owns %d of 3000 keys; want about 1000 each (%v)", id, c, count)
		}
	}
	// Node 1 dies: only its keys move.
	alive := []Node{{ID: 0}, {ID: 2}}
	for k, was := range owner {
		n, _ := rendezvous(alive, []byte(k))
		if was != 1 && n.ID != was {
			t.Fatalf("key %s moved from live node %d to %d", k, was, n.ID)
		}
	}
	if _, ok := rendezvous(nil, []byte("x")); ok {
		t.Fatal("rendezvous over no nodes found one")
	}
}

// TestFNVMatchesHashFNV: the placement hash is hash/fnv's FNV-1a, byte for
// byte; a node running an older build computes the same owners.
func TestFNVMatchesHashFNV(t *testing.T) {
	for i := 0; i < 200; i++ {
		id := []byte{0, 0, byte(i >> 8), byte(i)}
		key := []byte(fmt.Sprintf("topic-%d/partition-%d", i*7, i))
		h := fnv.New64a()
		h.Write(id)
		h.Write(key)
		if got, want := fnv1a(fnv1a(fnvOffset, id), key), h.Sum64(); got != want {
			t.Fatalf("fnv1a = %x, hash/fnv = %x", got, want)
		}
	}
}

// TestNodeListIsSharedUntilTheNodesChange: placement reads one sorted node
// slice, rebuilt only when the node set changes.
func TestNodeListIsSharedUntilTheNodesChange(t *testing.T) {
	c := newCache(keys{}, nil)
	c.nodes[2] = cachedNode{n: Node{ID: 2}}
	c.nodes[1] = cachedNode{n: Node{ID: 1}}
	c.nodesVersion++
	a := c.nodeList()
	if len(a) != 2 || a[0].ID != 1 || a[1].ID != 2 {
		t.Fatalf("nodes %v, want 1, 2", a)
	}
	if b := c.nodeList(); &b[0] != &a[0] {
		t.Fatal("node list rebuilt without a change")
	}
	if n := testing.AllocsPerRun(100, func() { c.nodeList() }); n != 0 {
		t.Fatalf("%v allocations per nodeList", n)
	}
	c.nodes[0] = cachedNode{n: Node{ID: 0}}
	c.nodesVersion++
	if b := c.nodeList(); len(b) != 3 || b[0].ID != 0 {
		t.Fatalf("after a change: %v", b)
	}
	if all := c.allNodes(); &all[0] == &c.nodeList()[0] {
		t.Fatal("allNodes shares the cache's slice")
	}
}
