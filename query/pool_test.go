package query

import (
	"testing"
	"unsafe"
)

// TestSizeClasses checks the pool's classes: each size gets the smallest
// class that holds it, classes ascend, and a class's capacity maps back to
// itself (which is how Free recognises a pooled buffer).
func TestSizeClasses(t *testing.T) {
	prevClass, prevCap := -1, 0
	for size := 1 << minPooledShift; size <= 1<<maxPooledShift; size += 1 + size/97 {
		class, capacity, ok := sizeClass(size)
		if !ok {
			t.Fatalf("size %d not pooled", size)
		}
		if capacity < size || capacity > size+size/4+1 {
			t.Fatalf("size %d: class %d of capacity %d", size, class, capacity)
		}
		if class < prevClass || class == prevClass && capacity != prevCap || class > prevClass && capacity <= prevCap {
			t.Fatalf("size %d: class %d (capacity %d) after class %d (capacity %d)", size, class, capacity, prevClass, prevCap)
		}
		if c2, cap2, ok := sizeClass(capacity); !ok || c2 != class || cap2 != capacity {
			t.Fatalf("capacity %d maps to class %d (capacity %d), not %d", capacity, c2, cap2, class)
		}
		if class >= len(recycler{}.free) {
			t.Fatalf("size %d: class %d beyond the %d classes", size, class, len(recycler{}.free))
		}
		prevClass, prevCap = class, capacity
	}
	for _, size := range []int{0, 1, 1<<minPooledShift - 1, 1<<maxPooledShift + 1} {
		if _, _, ok := sizeClass(size); ok {
			t.Errorf("size %d pooled", size)
		}
	}
}

// TestRecycler checks that freed buffers come back, a bounded number of
// them, and that Reallocate keeps the contents.
func TestRecycler(t *testing.T) {
	r := new(recycler)
	b := r.Allocate(5000)
	if len(b) != 5000 || cap(b) != 5120 {
		t.Fatalf("Allocate(5000): len %d cap %d", len(b), cap(b))
	}
	b[0], b[4999] = 1, 2
	r.Free(b)
	b2 := r.Allocate(5100)
	if &b2[0] != &b[0] || len(b2) != 5100 {
		t.Errorf("Allocate after Free did not reuse the buffer")
	}
	b3 := r.Reallocate(70000, b2)
	if len(b3) != 70000 || b3[0] != 1 || b3[4999] != 2 {
		t.Errorf("Reallocate lost the contents")
	}
	var bufs [][]byte
	for range recycledPerClass + 3 {
		bufs = append(bufs, r.Allocate(1<<20))
	}
	for _, b := range bufs {
		r.Free(b)
	}
	class, _, _ := sizeClass(1 << 20)
	if n := len(r.free[class]); n != recycledPerClass {
		t.Errorf("%d buffers of a class kept, want %d", n, recycledPerClass)
	}
	r.Free(make([]byte, 100))     // too small: ignored
	r.Free(make([]byte, 0, 5000)) // not a class capacity: ignored
	small := r.Allocate(100)
	if len(small) != 100 || uintptr(unsafe.Pointer(&small[0]))%64 != 0 {
		t.Errorf("small allocation: len %d, misaligned", len(small))
	}
}
