package objstore

import (
	"errors"
	"fmt"
)

// ErrInvalidKey is returned (wrapped) for a key no store accepts: empty, with a
// leading "/", or with a "." or ".." path element. Rejecting these everywhere
// keeps a key meaning the same object in every implementation.
var ErrInvalidKey = errors.New("objstore: invalid key")

// ErrInvalidRange is returned (wrapped) by GetRange for a negative offset or
// length, or a range that runs past the end of the object. Callers always know
// an object's size, so a short read is a bug worth surfacing, not truncating.
var ErrInvalidRange = errors.New("objstore: invalid range")

// ErrBucketNotExist is returned (wrapped, inside a *BucketNotExistError) by
// Open when the bucket (or the filesystem root) is missing and
// Options.CreateBucket is false.
var ErrBucketNotExist = errors.New("objstore: bucket does not exist")

// BucketNotExistError names the missing bucket and tells the operator how to
// have it created, because "does not exist" alone sends people to the docs.
type BucketNotExistError struct {
	// Bucket is the bucket name, or the root directory of a filesystem store.
	Bucket string
}

// Error reports the missing bucket and the flag that creates it.
func (e *BucketNotExistError) Error() string {
	return fmt.Sprintf("objstore: bucket %q does not exist (use --object-store-create-bucket)", e.Bucket)
}

// Unwrap lets errors.Is(err, ErrBucketNotExist) match.
func (e *BucketNotExistError) Unwrap() error { return ErrBucketNotExist }
