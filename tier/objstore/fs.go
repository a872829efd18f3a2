package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// FileBucket is a Bucket kept in a local directory: the single-binary default
// and the store tests use when they do not need S3. Key "a/b" is the file
// root/a/b.
//
// Put writes a temp file in the destination directory, fsyncs it, renames it
// over the key and fsyncs the directory, so a crash leaves the old object or
// the new one, never a torn one, and a Put that returned nil survives power
// loss. Temp files (names starting with ".objstore-tmp-") are never returned
// by Get or List; a crash can leave one behind, which costs disk space and
// nothing else.
//
// Because keys are paths, one key cannot be both an object and a "directory"
// of others: with "a" stored, Put("a/b") fails, and vice versa. S3 allows it;
// Strata's key layout never needs it.
type FileBucket struct {
	root   string
	logger *slog.Logger
}

var _ Bucket = (*FileBucket)(nil)

// NewFileBucket opens the filesystem store rooted at root, an absolute path.
// A missing root is a *BucketNotExistError unless opts.CreateBucket is set. A
// nil logger discards.
func NewFileBucket(root string, opts Options, logger *slog.Logger) (*FileBucket, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if !filepath.IsAbs(root) {
		return nil, fmt.Errorf("objstore: file store root %q is not an absolute path", root)
	}
	root = filepath.Clean(root)
	fi, err := os.Stat(root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if !opts.CreateBucket {
			return nil, &BucketNotExistError{Bucket: root}
		}
		if err := os.MkdirAll(root, 0o755); err != nil {
			return nil, fmt.Errorf("objstore: create file store root: %w", err)
		}
		if err := syncDir(filepath.Dir(root)); err != nil {
			return nil, fmt.Errorf("objstore: create file store root: %w", err)
		}
		logger.Info("objstore: created file store root", "root", root)
	case err != nil:
		return nil, fmt.Errorf("objstore: file store root: %w", err)
	case !fi.IsDir():
		return nil, fmt.Errorf("objstore: file store root %q is not a directory", root)
	}
	return &FileBucket{root: root, logger: logger}, nil
}

// Root returns the directory the store keeps its objects in.
func (b *FileBucket) Root() string { return b.root }

func (b *FileBucket) path(key string) string {
	return filepath.Join(b.root, filepath.FromSlash(key))
}

// isMissing reports whether err means "no such object": the file is absent,
// a parent is a file, or the path is a directory (a key prefix, not an
// object).
func isMissing(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR)
}

func notFound(key string) error {
	return fmt.Errorf("%w: %q", ErrNotFound, key)
}

// Get returns the whole object.
func (b *FileBucket) Get(ctx context.Context, key string) ([]byte, error) {
	if err := validateKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("objstore: get %q: %w", key, err)
	}
	f, err := os.Open(b.path(key))
	if err != nil {
		if isMissing(err) {
			return nil, notFound(key)
		}
		return nil, fmt.Errorf("objstore: get %q: %w", key, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("objstore: get %q: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, notFound(key)
	}
	// Read exactly the size seen at open: the file never changes once it is
	// renamed into place (overwrites rename a new inode over it).
	buf := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, buf); err != nil {
		return nil, fmt.Errorf("objstore: get %q: %w", key, err)
	}
	return buf, nil
}

// GetRange returns length bytes starting at off.
func (b *FileBucket) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	if err := validateKey(key); err != nil {
		return nil, err
	}
	if err := checkRange(off, length); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("objstore: get range %q: %w", key, err)
	}
	f, err := os.Open(b.path(key))
	if err != nil {
		if isMissing(err) {
			return nil, notFound(key)
		}
		return nil, fmt.Errorf("objstore: get range %q: %w", key, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("objstore: get range %q: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, notFound(key)
	}
	if off+length > fi.Size() {
		return nil, fmt.Errorf("%w: %q offset %d length %d past size %d", ErrInvalidRange, key, off, length, fi.Size())
	}
	buf := make([]byte, length)
	if _, err := f.ReadAt(buf, off); err != nil && !(err == io.EOF && length == 0) {
		return nil, fmt.Errorf("objstore: get range %q: %w", key, err)
	}
	return buf, nil
}

// Stat returns the object's attributes.
func (b *FileBucket) Stat(ctx context.Context, key string) (Attrs, error) {
	if err := validateKey(key); err != nil {
		return Attrs{}, err
	}
	if err := ctx.Err(); err != nil {
		return Attrs{}, fmt.Errorf("objstore: stat %q: %w", key, err)
	}
	fi, err := os.Stat(b.path(key))
	if err != nil {
		if isMissing(err) {
			return Attrs{}, notFound(key)
		}
		return Attrs{}, fmt.Errorf("objstore: stat %q: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		return Attrs{}, notFound(key)
	}
	return Attrs{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// List calls fn for every object whose key starts with prefix, in lexical
// key order.
func (b *FileBucket) List(ctx context.Context, prefix string, fn func(Attrs) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("objstore: list %q: %w", prefix, err)
	}
	return b.walk(ctx, b.root, "", prefix, fn)
}

// walk lists dir, whose keys all start with keyDir ("" or "a/b/"), in key
// order. Directory entries sort by name+"/" because that is how every key
// under them begins: "a-c" < "a/b" even though the directory "a" sorts
// before the file "a-c" by name.
func (b *FileBucket) walk(ctx context.Context, dir, keyDir, prefix string, fn func(Attrs) error) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if dir != b.root && isMissing(err) {
			return nil // pruned by a concurrent Delete: it held no objects
		}
		return fmt.Errorf("objstore: list %q: %w", prefix, err)
	}
	type entry struct {
		sortKey string
		d       fs.DirEntry
	}
	sorted := make([]entry, 0, len(entries))
	for _, d := range entries {
		name := d.Name()
		if strings.HasPrefix(name, tempPrefix) {
			continue
		}
		switch {
		case d.IsDir():
			sorted = append(sorted, entry{sortKey: name + "/", d: d})
		case d.Type().IsRegular():
			sorted = append(sorted, entry{sortKey: name, d: d})
		}
	}
	slices.SortFunc(sorted, func(a, b entry) int { return strings.Compare(a.sortKey, b.sortKey) })

	for _, e := range sorted {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("objstore: list %q: %w", prefix, err)
		}
		key := keyDir + e.sortKey
		if e.d.IsDir() {
			// Descend only if keys under it can match the prefix.
			if !strings.HasPrefix(key, prefix) && !strings.HasPrefix(prefix, key) {
				continue
			}
			if err := b.walk(ctx, filepath.Join(dir, e.d.Name()), key, prefix, fn); err != nil {
				return err
			}
			continue
		}
		if !strings.HasPrefix(key, prefix) {
			continue
		}
		fi, err := e.d.Info()
		if err != nil {
			if isMissing(err) {
				continue // deleted since ReadDir
			}
			return fmt.Errorf("objstore: list %q: %w", prefix, err)
		}
		if err := fn(Attrs{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}

// maxDirRaces bounds how often Put retries after a concurrent Delete pruned
// the directory it was about to write into.
const maxDirRaces = 16

// Put stores data under key, atomically and durably.
func (b *FileBucket) Put(ctx context.Context, key string, data []byte) error {
	if err := validateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("objstore: put %q: %w", key, err)
	}
	path := b.path(key)
	dir := filepath.Dir(path)
	var err error
	for range maxDirRaces {
		err = b.putOnce(ctx, dir, path, data)
		// ENOENT here means a concurrent Delete removed a directory we had
		// just made or seen; make it again.
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("objstore: put %q: %w", key, err)
	}
	return nil
}

func (b *FileBucket) putOnce(ctx context.Context, dir, path string, data []byte) (err error) {
	if err := b.mkdirs(dir); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// Last chance to honour cancellation: after the rename the Put happened.
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if err := syncDir(dir); err != nil {
		// The object is in place but its directory entry may not be durable;
		// report failure so the caller does not count on it.
		return err
	}
	return nil
}

// mkdirs creates dir and any missing parents below the root, fsyncing each
// parent that gained an entry so the new object's path survives a crash.
func (b *FileBucket) mkdirs(dir string) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	rel, err := filepath.Rel(b.root, dir)
	if err != nil {
		return err
	}
	cur := b.root
	for elem := range strings.SplitSeq(rel, string(filepath.Separator)) {
		parent := cur
		cur = filepath.Join(cur, elem)
		err := os.Mkdir(cur, 0o755)
		switch {
		case err == nil:
			if err := syncDir(parent); err != nil {
				return err
			}
		case errors.Is(err, fs.ErrExist):
			fi, serr := os.Stat(cur)
			if serr != nil {
				return serr
			}
			if !fi.IsDir() {
				return fmt.Errorf("%s is an object, not a directory: %w", cur, syscall.ENOTDIR)
			}
		default:
			return err
		}
	}
	return nil
}

// Delete removes key; a missing key is not an error.
func (b *FileBucket) Delete(ctx context.Context, key string) error {
	if err := validateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("objstore: delete %q: %w", key, err)
	}
	path := b.path(key)
	fi, err := os.Lstat(path)
	if err != nil {
		if isMissing(err) {
			return nil
		}
		return fmt.Errorf("objstore: delete %q: %w", key, err)
	}
	if fi.IsDir() {
		return nil // a key prefix, not an object
	}
	if err := os.Remove(path); err != nil {
		if isMissing(err) {
			return nil
		}
		return fmt.Errorf("objstore: delete %q: %w", key, err)
	}
	dir := filepath.Dir(path)
	if err := syncDir(dir); err != nil && !isMissing(err) {
		return fmt.Errorf("objstore: delete %q: %w", key, err)
	}
	b.pruneEmptyDirs(dir)
	return nil
}

// pruneEmptyDirs removes now-empty directories from dir up to (not
// including) the root, so deleting every object under a prefix leaves no
// directories behind. os.Remove fails on a non-empty directory, which is
// what stops the climb; a Put racing with this retries its mkdir.
func (b *FileBucket) pruneEmptyDirs(dir string) {
	for dir != b.root && strings.HasPrefix(dir, b.root+string(filepath.Separator)) {
		if err := os.Remove(dir); err != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}

// Close releases nothing: a FileBucket holds no open resources between calls.
func (b *FileBucket) Close() error { return nil }

// syncDir fsyncs a directory so the entries created, renamed or removed in it
// are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
