package objstore_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/strata-io/strata/tier/objstore"
	"github.com/strata-io/strata/tier/objstore/objstoretest"
)

func newFileBucket(t *testing.T) objstore.Bucket {
	t.Helper()
	b, err := objstore.Open(t.Context(), "file://"+t.TempDir(), objstore.Options{}, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestFileBucketAcceptance(t *testing.T) {
	objstoretest.AcceptanceTest(t, newFileBucket)
}

func TestFileBucketLayout(t *testing.T) {
	root := t.TempDir()
	b, err := objstore.NewFileBucket(root, objstore.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := b.Put(ctx, "topic/0/seg", []byte("data")); err != nil {
		t.Fatal(err)
	}
	// The key is a plain file under the root, so operators can inspect it.
	got, err := os.ReadFile(filepath.Join(root, "topic", "0", "seg"))
	if err != nil || string(got) != "data" {
		t.Fatalf("file on disk = %q, %v; want \"data\"", got, err)
	}
	// No temp file is left behind by a successful Put.
	entries, err := os.ReadDir(filepath.Join(root, "topic", "0"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries after one Put, want 1", len(entries))
	}
	// Deleting the last object prunes the now-empty directories.
	if err := b.Delete(ctx, "topic/0/seg"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "topic")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("directory topic still there after deleting its last object: %v", err)
	}
	if _, err := os.Stat(root); err != nil {
		t.Fatalf("root removed by pruning: %v", err)
	}
}

// A crash between creating a temp file and renaming it leaves the temp file
// behind; it must never show up as an object.
func TestFileBucketHidesTempFiles(t *testing.T) {
	root := t.TempDir()
	b, err := objstore.NewFileBucket(root, objstore.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := b.Put(ctx, "dir/real", []byte("r")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{".objstore-tmp-123", "dir/.objstore-tmp-456", "dir/.objstore-tmp-789x"} {
		if err := os.WriteFile(filepath.Join(root, p), []byte("torn"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	if err := b.List(ctx, "", func(a objstore.Attrs) error { keys = append(keys, a.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"dir/real"}) {
		t.Fatalf("List = %q, want only dir/real", keys)
	}
	for _, key := range []string{".objstore-tmp-123", "dir/.objstore-tmp-456"} {
		if _, err := b.Get(ctx, key); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Fatalf("Get(%q) of a temp file: error = %v, want ErrInvalidKey", key, err)
		}
	}
}

// An object and a "directory" of the same name cannot coexist on a
// filesystem; the store must report that, not corrupt either.
func TestFileBucketObjectDirectoryClash(t *testing.T) {
	b := newFileBucket(t)
	ctx := t.Context()
	if err := b.Put(ctx, "a", []byte("file")); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "a/b", []byte("x")); err == nil {
		t.Fatal("Put(a/b) with object a present succeeded, want an error")
	}
	if err := b.Put(ctx, "c/d", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "c", []byte("x")); err == nil {
		t.Fatal("Put(c) with object c/d present succeeded, want an error")
	}
	if got, err := b.Get(ctx, "a"); err != nil || !bytes.Equal(got, []byte("file")) {
		t.Fatalf("Get(a) = %q, %v after the failed Put", got, err)
	}
}

func TestOpen(t *testing.T) {
	existing := t.TempDir()
	missing := filepath.Join(t.TempDir(), "not", "yet")
	tests := []struct {
		name    string
		url     string
		opts    objstore.Options
		wantErr string // substring; "" means success
		is      error
	}{
		{name: "file", url: "file://" + existing},
		{name: "file localhost", url: "file://localhost" + existing},
		{name: "file missing", url: "file://" + missing, wantErr: `objstore: bucket "` + missing + `" does not exist (use --object-store-create-bucket)`, is: objstore.ErrBucketNotExist},
		{name: "file missing create", url: "file://" + missing, opts: objstore.Options{CreateBucket: true}},
		{name: "file relative", url: "file:relative/path", wantErr: "absolute path"},
		{name: "file host", url: "file://host/abs", wantErr: "empty host"},
		{name: "file query", url: "file://" + existing + "?x=1", wantErr: "no query"},
		{name: "unsupported scheme", url: "ftp://host/path", wantErr: `objstore: unsupported scheme "ftp" in "ftp://host/path"`},
		{name: "no scheme", url: "/abs/path", wantErr: "has no scheme"},
		{name: "garbage", url: "::not a url", wantErr: "bad object store URL"},
		{name: "s3 no bucket", url: "s3:///prefix", wantErr: "has no bucket"},
		{name: "s3 unknown param", url: "s3://b/p?endpint=http://127.0.0.1:1", wantErr: `unknown parameter "endpint"`},
		{name: "s3 bad endpoint", url: "s3://b/p?endpoint=127.0.0.1:9000", wantErr: "must be http(s)://host[:port]"},
		{name: "s3 bad path_style", url: "s3://b/p?endpoint=http://127.0.0.1:1&path_style=maybe", wantErr: "not a boolean"},
		{name: "s3 credentials in URL", url: "s3://key:secret@b/p", wantErr: "credentials in the environment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := objstore.Open(t.Context(), tt.url, tt.opts, nil)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Open(%q): %v", tt.url, err)
				}
				if b == nil {
					t.Fatal("Open returned a nil Bucket and no error")
				}
				b.Close()
				return
			}
			if err == nil {
				b.Close()
				t.Fatalf("Open(%q) succeeded, want error containing %q", tt.url, tt.wantErr)
			}
			if b != nil {
				t.Fatalf("Open(%q) returned a non-nil Bucket %#v with its error", tt.url, b)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Open(%q) error = %q, want it to contain %q", tt.url, err, tt.wantErr)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("Open(%q) error %v is not %v", tt.url, err, tt.is)
			}
		})
	}
	if fi, err := os.Stat(missing); err != nil || !fi.IsDir() {
		t.Fatalf("CreateBucket did not create the root: %v", err)
	}
}

func TestFileBucketContextHonoured(t *testing.T) {
	b := newFileBucket(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := b.Put(ctx, "k", []byte("v")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with cancelled ctx: %v", err)
	}
}
