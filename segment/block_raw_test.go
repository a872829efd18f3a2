package segment

import (
	"bytes"
	"testing"
)

func TestAppendRawBlockStoresRaw(t *testing.T) {
	payload := bytes.Repeat([]byte("compressible "), 1000)
	meta := BlockMeta{BaseOffset: 5, LastOffset: 9, MaxTimestamp: 7, BatchCount: 1}
	raw := AppendRawBlock(nil, meta, payload)
	if len(raw) != BlockHeaderSize+len(payload) {
		t.Fatalf("raw block is %d bytes, want header + payload = %d", len(raw), BlockHeaderSize+len(payload))
	}
	if z := AppendBlock(nil, meta, payload); len(z) >= len(raw) {
		t.Fatalf("AppendBlock did not compress a compressible payload (%d >= %d)", len(z), len(raw))
	}
	got, batches, n, err := DecodeBlock(nil, raw)
	if err != nil || n != len(raw) || got != meta || !bytes.Equal(batches, payload) {
		t.Fatalf("decode raw block: meta %+v n %d err %v", got, n, err)
	}
}
