package metadata

import (
	"fmt"
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
