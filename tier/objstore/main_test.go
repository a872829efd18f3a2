package objstore_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every S3Bucket, proxy and MinIO server a test starts must be gone by the
// end: Close and the t.Cleanup hooks own them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
