// Package miniotest runs a real MinIO server for tests: on 127.0.0.1, on
// free ports, with its data in t.TempDir(), killed when the test ends. Tests
// can stop, restart, pause and resume it to simulate object-store outages.
//
// The binary comes from $STRATA_MINIO_BIN, else $HOME/.cache/strata/bin/minio
// (what .ci/install-minio builds), else PATH. A missing binary fails the test:
// it must never skip, because a skipped storage test reads as a passing one.
//
// It is test support only: imported from _test.go files, never from
// production code, and it must never listen on anything but loopback.
package miniotest
