package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func responseErr(status int, err error) error {
	return &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
			Err:      err,
		},
	}
}

func apiErr(code string) error { return &smithy.GenericAPIError{Code: code, Message: "test"} }

func TestS3ErrorClassification(t *testing.T) {
	refused := &url.Error{Op: "Put", URL: "http://127.0.0.1:1/b/k", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	tests := []struct {
		name                string
		err                 error
		retryable, notFound bool
	}{
		{"SlowDown 503", responseErr(503, apiErr("SlowDown")), true, false},
		{"SlowDown code only", apiErr("SlowDown"), true, false},
		{"ServiceUnavailable", responseErr(503, apiErr("ServiceUnavailable")), true, false},
		{"InternalError 500", responseErr(500, apiErr("InternalError")), true, false},
		{"bare 502", responseErr(502, errors.New("bad gateway")), true, false},
		{"504", responseErr(504, errors.New("timeout")), true, false},
		{"429", responseErr(429, apiErr("TooManyRequests")), true, false},
		{"Throttling", apiErr("Throttling"), true, false},
		{"RequestTimeout", responseErr(400, apiErr("RequestTimeout")), true, false},
		{"MinIO not initialized", responseErr(503, apiErr("XMinioServerNotInitialized")), true, false},
		{"connection refused", refused, true, false},
		{"connection reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true, false},
		{"body cut short", fmt.Errorf("read body: %w", io.ErrUnexpectedEOF), true, false},
		{"NoSuchKey", responseErr(404, &types.NoSuchKey{}), false, true},
		{"HEAD 404", responseErr(404, &types.NotFound{}), false, true},
		{"NoSuchKey code", responseErr(404, apiErr("NoSuchKey")), false, true},
		{"NoSuchBucket", responseErr(404, apiErr("NoSuchBucket")), false, false},
		{"AccessDenied", responseErr(403, apiErr("AccessDenied")), false, false},
		{"InvalidRange", responseErr(416, apiErr("InvalidRange")), false, false},
		{"cancelled", fmt.Errorf("op: %w", context.Canceled), false, false},
		{"plain error", errors.New("something else"), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isS3Retryable(tt.err); got != tt.retryable {
				t.Errorf("isS3Retryable(%v) = %v, want %v", tt.err, got, tt.retryable)
			}
			if got := isS3NotFound(tt.err); got != tt.notFound {
				t.Errorf("isS3NotFound(%v) = %v, want %v", tt.err, got, tt.notFound)
			}
		})
	}
	if !isS3InvalidRange(responseErr(416, apiErr("InvalidRange"))) {
		t.Error("416 InvalidRange not recognised")
	}
}
