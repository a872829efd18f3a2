// Package objstoretest holds the acceptance suite every objstore.Bucket
// implementation must pass, so "works with the filesystem store" and "works
// with S3" mean the same thing.
//
// It is test support: imported only from _test.go files, and it must never
// depend on a particular implementation.
package objstoretest
