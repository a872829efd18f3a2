package objstore

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned (wrapped) by Get, GetRange and Stat when the key does
// not exist. Test with errors.Is.
var ErrNotFound = errors.New("objstore: object not found")

// Attrs describes one stored object.
type Attrs struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// BucketReader is the read half of a Bucket.
//
// Reads are strongly consistent with completed Puts (read-after-write), as S3
// and MinIO are today. Every call honours ctx cancellation.
type BucketReader interface {
	// Get returns the whole object.
	Get(ctx context.Context, key string) ([]byte, error)
	// GetRange returns length bytes starting at off. A range that runs past
	// the end of the object is an error (the caller always knows the size).
	GetRange(ctx context.Context, key string, off, length int64) ([]byte, error)
	// Stat returns the object's attributes.
	Stat(ctx context.Context, key string) (Attrs, error)
	// List calls fn for every object whose key starts with prefix, in
	// lexical key order. An error from fn stops the listing and is returned.
	List(ctx context.Context, prefix string, fn func(Attrs) error) error
}

// Bucket is an object store: a flat namespace of immutable blobs.
//
// Put is atomic: a reader sees the whole new object or nothing, never a
// partial one, and a Put that returned nil is durable. Put may overwrite.
// Delete of a missing key is not an error (deletes are idempotent).
// Implementations are safe for concurrent use.
type Bucket interface {
	BucketReader
	Put(ctx context.Context, key string, data []byte) error
	Delete(ctx context.Context, key string) error
	Close() error
}
