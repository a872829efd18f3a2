package ingest

import "sync"

// byteBudget bounds the fetch response bytes a node holds at once (read
// from storage, built, and being written to clients), so that slow readers
// cannot take the memory others need, and shares it fairly: a fetch may
// hold at most the budget divided among the fetches in progress, less when
// others already hold it, but never less than a floor (1 MiB), so nobody
// starves behind a reader that stopped reading. The node then holds at
// most the budget plus a floor per fetching connection, and a stalled
// reader holds its share only until the write deadline
// (--connections-max-idle) closes it.
type byteBudget struct {
	total int64
	floor int64

	mu     sync.Mutex
	used   int64
	active int64 // fetches holding a grant
}

func newByteBudget(total int64) *byteBudget {
	return &byteBudget{total: total, floor: min(1<<20, total)}
}

// grant reserves up to want bytes for a new fetch and returns how many: its
// fair share, what is left of the budget, or the floor, whichever applies.
// It never waits.
func (b *byteBudget) grant(want int64) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := min(want, b.total/(b.active+1), max(b.total-b.used, b.floor))
	n = max(n, min(want, b.floor))
	b.used += n
	b.active++
	return n
}

// release gives n granted bytes back; done ends the fetch's grant.
func (b *byteBudget) release(n int64, done bool) {
	b.mu.Lock()
	b.used -= n
	if done {
		b.active--
	}
	b.mu.Unlock()
}

// inUse reports the granted bytes and the fetches holding them.
func (b *byteBudget) inUse() (bytes, fetches int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used, b.active
}
