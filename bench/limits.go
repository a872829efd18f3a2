package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Limits is what this machine can do at best, measured the way Strata uses
// it: the ceilings a broker on it cannot beat.
type Limits struct {
	// FsyncWriteMBps is sequential 1 MiB writes to a file in the bench's dir,
	// each followed by fdatasync (the fs store's flush is a write + fsync).
	FsyncWriteMBps float64 `json:"fsync_write_mb_per_sec"`
	// FsyncP50 is the median latency of one 1 MiB write + fdatasync.
	FsyncP50 time.Duration `json:"fsync_p50_ns"`
	// LoopbackMBps is one TCP connection on 127.0.0.1 carrying 256 KiB
	// writes, read by another goroutine.
	LoopbackMBps float64 `json:"loopback_tcp_mb_per_sec"`
	// ZstdMBps is zstd (default level, one goroutine) over half-compressible
	// data, in input MB/s; ZstdRatio is input/output.
	ZstdMBps  float64 `json:"zstd_one_core_mb_per_sec"`
	ZstdRatio float64 `json:"zstd_ratio"`
}

// MeasureLimits measures this machine's limits, writing its scratch file in
// dir. Each measure is bounded by bytes and by time (about a second each).
func MeasureLimits(ctx context.Context, dir string) (Limits, error) {
	var l Limits
	var err error
	if l.FsyncWriteMBps, l.FsyncP50, err = measureFsync(ctx, dir); err != nil {
		return l, err
	}
	if l.LoopbackMBps, err = measureLoopback(ctx); err != nil {
		return l, err
	}
	l.ZstdMBps, l.ZstdRatio, err = measureZstd(ctx)
	return l, err
}

func measureFsync(ctx context.Context, dir string) (float64, time.Duration, error) {
	f, err := os.CreateTemp(dir, "fsync-")
	if err != nil {
		return 0, 0, fmt.Errorf("bench: limits: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{1}).Read(buf)
	const most = 256 // MiB
	var lat []time.Duration
	start := time.Now()
	for i := 0; i < most && time.Since(start) < time.Second && ctx.Err() == nil; i++ {
		t := time.Now()
		if _, err := f.Write(buf); err != nil {
			return 0, 0, fmt.Errorf("bench: limits: write: %w", err)
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return 0, 0, fmt.Errorf("bench: limits: fdatasync: %w", err)
		}
		lat = append(lat, time.Since(t))
	}
	el := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return float64(len(lat)) * float64(len(buf)) / 1e6 / el.Seconds(), lat[len(lat)/2], ctx.Err()
}

func measureLoopback(ctx context.Context) (float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("bench: limits: %w", err)
	}
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- 0
			return
		}
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		got <- n
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0, fmt.Errorf("bench: limits: %w", err)
	}
	buf := make([]byte, 256<<10)
	const most = 8 << 30
	var sent int64
	start := time.Now()
	for sent < most && time.Since(start) < time.Second && ctx.Err() == nil {
		n, err := c.Write(buf)
		sent += int64(n)
		if err != nil {
			c.Close()
			return 0, fmt.Errorf("bench: limits: loopback write: %w", err)
		}
	}
	c.Close()
	n := <-got
	el := time.Since(start)
	if n != sent {
		return 0, fmt.Errorf("bench: limits: loopback read %d of %d bytes", n, sent)
	}
	return float64(n) / 1e6 / el.Seconds(), ctx.Err()
}

// measureZstd compresses half-compressible data (random bytes alternating
// with runs of one byte) with one encoder goroutine.
func measureZstd(ctx context.Context) (float64, float64, error) {
	in := make([]byte, 4<<20)
	rng := rand.NewChaCha8([32]byte{2})
	for i := 0; i < len(in); i += 256 {
		rng.Read(in[i : i+128])
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		return 0, 0, err
	}
	defer enc.Close()
	var out []byte
	var done, outBytes int64
	start := time.Now()
	for time.Since(start) < time.Second && done < 4<<30 && ctx.Err() == nil {
		out = enc.EncodeAll(in, out[:0])
		done += int64(len(in))
		outBytes += int64(len(out))
	}
	if outBytes == 0 {
		return 0, 0, errors.New("bench: limits: zstd produced nothing")
	}
	return float64(done) / 1e6 / time.Since(start).Seconds(), float64(done) / float64(outBytes), ctx.Err()
}

// scratchDir returns dir, creating it.
func scratchDir(dir, name string) (string, error) {
	d := filepath.Join(dir, name)
	return d, os.MkdirAll(d, 0o755)
}
