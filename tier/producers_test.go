package tier

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/strata-io/strata/segment/kbatch"
)

// idemBatch builds an idempotent producer's batch of n records.
func idemBatch(t *testing.T, pid int64, epoch int16, seq int32, n int, tag string) ([]byte, kbatch.Header) {
	t.Helper()
	recs := make([]kbatch.Record, n)
	for i := range recs {
		recs[i] = kbatch.Record{Timestamp: 1, Value: []byte(fmt.Sprintf("%s-%d", tag, i))}
	}
	b, err := kbatch.Build(recs, kbatch.BuildOptions{Codec: kbatch.None, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq, BaseTimestamp: 1})
	if err != nil {
		t.Fatal(err)
	}
	hs, err := kbatch.Validate(b)
	if err != nil {
		t.Fatal(err)
	}
	return b, hs[0]
}

func appendWait(t *testing.T, p *Partition, b []byte, h kbatch.Header) (int64, error) {
	t.Helper()
	ctx := context.Background()
	base, wait, err := p.Append(ctx, b, h)
	if err != nil {
		return 0, err
	}
	return base, wait(ctx)
}

func TestIdempotentProducerDedupAndOrdering(t *testing.T) {
	e := newEnv(t, 1)
	tr := e.tier(Config{})
	p := e.partition(tr, 0)

	b0, h0 := idemBatch(t, 7, 0, 0, 3, "a")
	if base, err := appendWait(t, p, b0, h0); err != nil || base != 0 {
		t.Fatalf("first batch: base %d, %v", base, err)
	}
	b1, h1 := idemBatch(t, 7, 0, 3, 2, "b")
	if base, err := appendWait(t, p, b1, h1); err != nil || base != 3 {
		t.Fatalf("second batch: base %d, %v", base, err)
	}
	// A retry of the first batch: its original offset, stored once.
	r0, rh0 := idemBatch(t, 7, 0, 0, 3, "a")
	if base, err := appendWait(t, p, r0, rh0); err != nil || base != 0 {
		t.Fatalf("retried batch: base %d, %v; want 0, nil", base, err)
	}
	// A gap in sequences.
	g, gh := idemBatch(t, 7, 0, 9, 1, "gap")
	if _, err := appendWait(t, p, g, gh); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("gap: %v, want ErrOutOfOrderSequence", err)
	}
	// A bumped epoch starts again at 0; the old epoch is then fenced.
	n, nh := idemBatch(t, 7, 1, 0, 1, "c")
	if base, err := appendWait(t, p, n, nh); err != nil || base != 5 {
		t.Fatalf("new epoch: base %d, %v", base, err)
	}
	o, oh := idemBatch(t, 7, 0, 5, 1, "old")
	if _, err := appendWait(t, p, o, oh); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("old epoch: %v, want ErrInvalidProducerEpoch", err)
	}
	if hw := p.HighWatermark(); hw != 6 {
		t.Fatalf("high watermark %d, want 6 (3+2+1, duplicates and rejects stored nothing)", hw)
	}
	res, err := p.Read(context.Background(), 0, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := values(t, res.Batches); fmt.Sprint(got) != "[0:a-0 1:a-1 2:a-2 3:b-0 4:b-1 5:c-0]" {
		t.Fatalf("log: %v", got)
	}
}

func TestProducerStateSurvivesTakeover(t *testing.T) {
	e := newEnv(t, 1)
	tr := e.tier(Config{})
	p := e.partition(tr, 0)
	for i := int32(0); i < 7; i++ {
		b, h := idemBatch(t, 42, 3, i*2, 2, fmt.Sprintf("r%d", i))
		if _, err := appendWait(t, p, b, h); err != nil {
			t.Fatal(err)
		}
	}
	// Another node takes over with an empty disk.
	tr2 := e.tier(Config{})
	p2 := e.partition(tr2, 0)
	// The producer's retry of its last in-flight batch is recognised.
	b, h := idemBatch(t, 42, 3, 12, 2, "r6")
	if base, err := appendWait(t, p2, b, h); err != nil || base != 12 {
		t.Fatalf("retry after takeover: base %d, %v; want 12, nil", base, err)
	}
	// And the next sequence continues; a gap is still a gap.
	b, h = idemBatch(t, 42, 3, 14, 1, "r7")
	if base, err := appendWait(t, p2, b, h); err != nil || base != 14 {
		t.Fatalf("next after takeover: base %d, %v", base, err)
	}
	b, h = idemBatch(t, 42, 3, 20, 1, "gap")
	if _, err := appendWait(t, p2, b, h); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("gap after takeover: %v", err)
	}
	if hw := p2.HighWatermark(); hw != 15 {
		t.Fatalf("high watermark %d, want 15", hw)
	}
}
