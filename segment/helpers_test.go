package segment

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// semiCompressible returns n bytes resembling JSON event records: repeated
// keys and vocabulary with random numbers and ids, compressing about 3-5x,
// like typical Kafka payloads.
func semiCompressible(rng *rand.Rand, n int) []byte {
	words := []string{"click", "view", "purchase", "signup", "logout", "search", "error", "retry"}
	out := make([]byte, 0, n+256)
	for len(out) < n {
		out = fmt.Appendf(out, `{"user":%d,"event":%q,"ts":%d,"session":"%016x","amount":%.2f}`+"\n",
			rng.IntN(1_000_000), words[rng.IntN(len(words))], 1_700_000_000_000+rng.Int64N(1e9), rng.Uint64(), rng.Float64()*1000)
	}
	return out[:n]
}

// incompressible returns n random bytes.
func incompressible(rng *rand.Rand, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = byte(rng.Uint32())
	}
	return out
}

func newRNG(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }

// testBlock is a block plus what it was made from.
type testBlock struct {
	meta    BlockMeta
	payload []byte
	enc     []byte
}

// makeBlocks builds n blocks with increasing offsets starting at base,
// leaving a gap after every third block and with non-monotonic timestamps.
func makeBlocks(t testing.TB, rng *rand.Rand, base int64, n int) []testBlock {
	t.Helper()
	var out []testBlock
	off := base
	for i := range n {
		count := int64(1 + rng.IntN(50))
		var payload []byte
		switch i % 3 {
		case 0:
			payload = semiCompressible(rng, 100+rng.IntN(5000))
		case 1:
			payload = incompressible(rng, 1+rng.IntN(3000))
		default:
			payload = semiCompressible(rng, rng.IntN(600))
		}
		meta := BlockMeta{BaseOffset: off, LastOffset: off + count - 1, MaxTimestamp: 1000 + rng.Int64N(500), BatchCount: int32(1 + rng.IntN(5))}
		out = append(out, testBlock{meta: meta, payload: payload, enc: AppendBlock(nil, meta, payload)})
		off += count
		if i%3 == 2 {
			off += int64(rng.IntN(10))
		}
	}
	return out
}

func encoded(blocks []testBlock) [][]byte {
	out := make([][]byte, len(blocks))
	for i, b := range blocks {
		out[i] = b.enc
	}
	return out
}
