package objstore

import (
	"fmt"
	"strings"
)

// tempPrefix starts the name of every file a FileBucket writes before it is
// renamed into place. Keys may not have a path element starting with it, so
// a temp file can never be mistaken for an object.
const tempPrefix = ".objstore-tmp-"

// validateKey enforces the key rules shared by every implementation, so a key
// that works on the filesystem store works on S3 and vice versa: non-empty,
// "/"-separated elements that are neither empty, ".", ".." nor reserved, and
// no NUL byte.
func validateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	}
	if strings.HasPrefix(key, "/") {
		return fmt.Errorf("%w: %q starts with /", ErrInvalidKey, key)
	}
	if strings.IndexByte(key, 0) >= 0 {
		return fmt.Errorf("%w: %q contains a NUL byte", ErrInvalidKey, key)
	}
	for elem := range strings.SplitSeq(key, "/") {
		switch {
		case elem == "":
			return fmt.Errorf("%w: %q has an empty path element", ErrInvalidKey, key)
		case elem == "." || elem == "..":
			return fmt.Errorf("%w: %q has a %q path element", ErrInvalidKey, key, elem)
		case strings.HasPrefix(elem, tempPrefix):
			return fmt.Errorf("%w: %q uses the reserved prefix %q", ErrInvalidKey, key, tempPrefix)
		}
	}
	return nil
}

// checkRange validates GetRange arguments before any I/O.
func checkRange(off, length int64) error {
	if off < 0 || length < 0 {
		return fmt.Errorf("%w: offset %d length %d", ErrInvalidRange, off, length)
	}
	if off > (1<<63-1)-length {
		return fmt.Errorf("%w: offset %d length %d overflows", ErrInvalidRange, off, length)
	}
	return nil
}
