package query

import (
	"math/bits"
	"sync"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// recycler is the allocator of a Converter's buffers when BatchOptions names
// none: it keeps the buffers of the last batch released and hands them out
// for the next one, so a stream of batches reuses the same memory instead
// of having the Go allocator zero, and the garbage collector reclaim,
// megabytes a batch (in a profile of the HTTP Arrow stream, zeroing fresh
// buffers cost as much as filling them). It keeps at most recycledPerClass
// free buffers of each size class however many batches a consumer releases
// at once; the rest, and the recycler itself once its Converter and
// batches are gone, are left to the garbage collector.
//
// Buffers of 4 KiB to 64 MiB are recycled, in size classes four to a
// doubling (a buffer wastes under a fifth of its capacity); others come
// from the Go allocator. Recycled memory is not zeroed: every Converter
// buffer is written in full before it is handed out. A batch's memory is
// reused once the batch is released, so nothing taken from it without a
// copy (String.Value's strings alias it) may outlive the batch.
type recycler struct {
	mu   sync.Mutex
	free [(maxPooledShift - minPooledShift + 1) * classesPerShift][][]byte
}

const (
	minPooledShift = 12 // 4 KiB
	maxPooledShift = 26 // 64 MiB
	// classesPerShift size classes split each doubling: 1, 1.25, 1.5 and
	// 1.75 times a power of two.
	classesPerShift = 4
	// recycledPerClass is how many free buffers of a class a recycler
	// keeps: a batch's worth. ScanArrow's worker fills a batch while one
	// waits and the caller holds a third; the caller's releasing that one
	// frees the buffers the worker's next batch takes.
	recycledPerClass = 1
)

// sizeClass returns the class of the smallest recycled capacity that holds
// size bytes, and that capacity; ok is false when size is not recycled.
func sizeClass(size int) (class, capacity int, ok bool) {
	if size < 1<<minPooledShift || size > 1<<maxPooledShift {
		return 0, 0, false
	}
	shift := bits.Len(uint(size)) - 1 // 1<<shift <= size < 1<<(shift+1)
	step := 1 << shift / classesPerShift
	q := (size - 1<<shift + step - 1) / step // steps above 1<<shift, rounded up
	if q == classesPerShift {
		shift, q = shift+1, 0
	}
	return (shift-minPooledShift)*classesPerShift + q, 1<<shift + q*step, true
}

func (r *recycler) Allocate(size int) []byte {
	class, capacity, ok := sizeClass(size)
	if !ok || class >= len(r.free) {
		return memory.DefaultAllocator.Allocate(size)
	}
	r.mu.Lock()
	if l := r.free[class]; len(l) > 0 {
		b := l[len(l)-1]
		l[len(l)-1] = nil
		r.free[class] = l[:len(l)-1]
		r.mu.Unlock()
		return b[:size]
	}
	r.mu.Unlock()
	// Go's allocations of 4 KiB and more are 64-byte aligned, as Arrow
	// wants: check rather than rely on it.
	b := make([]byte, size, capacity)
	if uintptr(unsafe.Pointer(unsafe.SliceData(b)))%64 != 0 {
		return memory.DefaultAllocator.Allocate(size)
	}
	return b
}

func (r *recycler) Reallocate(size int, b []byte) []byte {
	if size <= cap(b) {
		return b[:size]
	}
	nb := r.Allocate(size)
	copy(nb, b)
	r.Free(b)
	return nb
}

func (r *recycler) Free(b []byte) {
	class, capacity, ok := sizeClass(cap(b))
	if !ok || capacity != cap(b) || class >= len(r.free) {
		return // not a class: the garbage collector's
	}
	r.mu.Lock()
	if len(r.free[class]) < recycledPerClass {
		r.free[class] = append(r.free[class], b[:capacity])
	}
	r.mu.Unlock()
}
