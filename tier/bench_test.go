package tier

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/segment/kbatch"
)

// benchBatch builds one uncompressed batch of n records of size bytes.
func benchBatch(b *testing.B, n, size int) ([]byte, kbatch.Header) {
	b.Helper()
	recs := make([]kbatch.Record, n)
	for i := range recs {
		v := make([]byte, size)
		for j := range v {
			v[j] = byte(i*31 + j*7)
		}
		recs[i] = kbatch.Record{Timestamp: int64(i), Value: v}
	}
	raw, err := kbatch.Build(recs, kbatch.BuildOptions{Codec: kbatch.None, ProducerID: -1, BaseTimestamp: 1})
	if err != nil {
		b.Fatal(err)
	}
	hs, err := kbatch.Validate(raw)
	if err != nil {
		b.Fatal(err)
	}
	return raw, hs[0]
}

// benchTier starts a tier on a fresh etcd and fs store whose flusher only
// runs when the benchmark calls flushOnce (interval an hour, size trigger
// and buffer ceiling far above what it appends).
func benchTier(b *testing.B, partitions int32) (*Tier, []*Partition) {
	e := newEnvWith(b, partitions, nil, 0)
	m := e.meta()
	waitFor(b, func() bool { _, ok := m.Topic(e.topic); return ok })
	tr, err := New(Config{DataDir: b.TempDir(), FlushInterval: time.Hour, FlushBytes: 1 << 40, MaxBufferedBytes: 1 << 40,
		MaintenanceInterval: time.Hour}, e.bucket, m, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tr.Close(ctx)
	})
	ps := make([]*Partition, partitions)
	for i := range ps {
		if ps[i], err = tr.Partition(context.Background(), metadata.TP{Topic: e.topic, Partition: int32(i)}); err != nil {
			b.Fatal(err)
		}
	}
	return tr, ps
}

// BenchmarkAppend is the produce path below the protocol: offsets, the
// local segment write and the flush group, for a 64 KiB batch of 1 KiB
// records (flushed every 256 appends, untimed).
func BenchmarkAppend(b *testing.B) {
	tr, ps := benchTier(b, 1)
	raw, h := benchBatch(b, 64, 1000)
	ctx := context.Background()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		batch := append([]byte(nil), raw...) // Append rewrites offsets in place
		if _, _, err := ps[0].Append(ctx, batch, h); err != nil {
			b.Fatal(err)
		}
		if i++; i%256 == 0 {
			b.StopTimer()
			tr.flushOnce(ctx)
			b.StartTimer()
		}
	}
}

// BenchmarkFlush is one flush of 6 partitions' pending data (16 × 64 KiB
// per partition, 6 MiB): framing the object, the PUT (fs store: write +
// fsync) and the etcd commit. The appends are untimed.
func BenchmarkFlush(b *testing.B) {
	for _, parts := range []int32{6, 64} {
		b.Run(fmt.Sprintf("partitions=%d", parts), func(b *testing.B) {
			tr, ps := benchTier(b, parts)
			raw, h := benchBatch(b, 64, 1000)
			ctx := context.Background()
			per := int(96 / parts)
			if per < 1 {
				per = 1
			}
			b.SetBytes(int64(len(raw) * per * int(parts)))
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				for _, p := range ps {
					for range per {
						if _, _, err := p.Append(ctx, append([]byte(nil), raw...), h); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.StartTimer()
				if !tr.flushOnce(ctx) {
					b.Fatal("nothing flushed")
				}
			}
		})
	}
}

// BenchmarkTailRead is a tailing consumer's read of the batch just made
// durable: served from memory, no disk read, decompression or CRC pass.
func BenchmarkTailRead(b *testing.B) {
	tr, ps := benchTier(b, 1)
	raw, h := benchBatch(b, 64, 1000)
	ctx := context.Background()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		base, _, err := ps[0].Append(ctx, append([]byte(nil), raw...), h)
		if err != nil {
			b.Fatal(err)
		}
		tr.flushOnce(ctx)
		b.StartTimer()
		res, err := ps[0].Read(ctx, base, 1<<20, true)
		if err != nil || len(res.Batches) != len(raw) {
			b.Fatalf("read %d bytes, %v", len(res.Batches), err)
		}
	}
}
