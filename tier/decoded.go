package tier

// decodedCache keeps recently decoded spans (decompressed record batches)
// in memory within a byte budget, least recently used out first. A fetch
// that stops in the middle of a span leaves the rest for the next fetch,
// which then finds it here instead of reading and decompressing it again.
// Entries are immutable: durable data never changes under a key.
type decodedCache = lru[string, []byte]

// newDecodedCache admits no span over a quarter of budget: one span must
// not flush everything else.
func newDecodedCache(budget int64) *decodedCache {
	return newLRU[string](budget, budget/4, func(b []byte) int64 { return int64(len(b)) }, nil)
}
