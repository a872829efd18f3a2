package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
)

// S3Bucket is a Bucket in an S3 bucket (AWS S3, or MinIO through an endpoint
// override and path-style addressing), optionally under a key prefix.
//
// Every request goes through one bounded retry loop (RetryConfig) and one
// semaphore (Options.MaxConcurrency), so a slow or failing store produces
// backpressure and bounded waits rather than a pile of goroutines.
type S3Bucket struct {
	client    *s3.Client
	transport *http.Transport
	bucket    string
	prefix    string // "" or ending in "/"
	sem       chan struct{}
	retry     *retrier
	logger    *slog.Logger
}

var _ Bucket = (*S3Bucket)(nil)

// NewS3Bucket connects to the bucket cfg names and checks that it exists,
// creating it if opts.CreateBucket is set. Credentials come from opts when
// opts.AccessKeyID is set, else from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
// when both are set, else from the standard AWS credential chain (shared
// config, SSO, web identity, ...). With an endpoint override the EC2
// instance-metadata service is not consulted: such deployments (MinIO) do
// not run on instance roles, and probing it off EC2 only adds a long stall.
// A nil logger discards.
func NewS3Bucket(ctx context.Context, cfg S3Config, opts Options, logger *slog.Logger) (*S3Bucket, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts = opts.withDefaults()
	if cfg.Bucket == "" {
		return nil, errors.New("objstore: s3 bucket name is empty")
	}

	// The loader must get a BuildableClient: it adds AWS_CA_BUNDLE's roots
	// to it and refuses any other client type when that is set. We then take
	// the finished transport out and wrap it in a client we own, so Close can
	// drop its idle connections.
	tuned := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		tr.MaxIdleConns = opts.MaxConcurrency * 2
		tr.MaxIdleConnsPerHost = opts.MaxConcurrency
		if opts.TLS != nil {
			tr.TLSClientConfig = opts.TLS.Clone()
		}
	})

	loadOpts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(tuned),
		config.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }),
		config.WithLogger(sdkLogger(logger)),
	}
	if cfg.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(cfg.Region))
	}
	if cfg.Endpoint != "" {
		loadOpts = append(loadOpts, config.WithEC2IMDSClientEnableState(imds.ClientDisabled))
	}
	switch {
	case opts.AccessKeyID != "":
		loadOpts = append(loadOpts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(opts.AccessKeyID, opts.SecretAccessKey, opts.SessionToken)))
	case os.Getenv("AWS_ACCESS_KEY_ID") != "" && os.Getenv("AWS_SECRET_ACCESS_KEY") != "":
		loadOpts = append(loadOpts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(
			os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN"))))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("objstore: load AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	transport := tuned.GetTransport()
	if bc, ok := awsCfg.HTTPClient.(*awshttp.BuildableClient); ok {
		transport = bc.GetTransport()
	}
	awsCfg.HTTPClient = &http.Client{
		Transport: transport,
		// S3 answers redirects for wrong-region requests; following them
		// would re-send a signed request elsewhere. Surface them instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		o.Retryer = aws.NopRetryer{}
	})

	b := &S3Bucket{
		client:    client,
		transport: transport,
		bucket:    cfg.Bucket,
		prefix:    normalizePrefix(cfg.Prefix),
		sem:       make(chan struct{}, opts.MaxConcurrency),
		retry:     newRetrier(opts.Retry, isS3Retryable, logger),
		logger:    logger.With("bucket", cfg.Bucket),
	}
	if err := b.ensureBucket(ctx, awsCfg.Region, opts.CreateBucket); err != nil {
		transport.CloseIdleConnections()
		return nil, err
	}
	return b, nil
}

func normalizePrefix(p string) string {
	p = strings.Trim(p, "/")
	if p == "" {
		return ""
	}
	return p + "/"
}

// sdkLogger routes the SDK's own log lines (checksum warnings and the like)
// to slog at debug level instead of stderr.
func sdkLogger(logger *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		logger.Debug("objstore: aws sdk: "+fmt.Sprintf(format, v...), "class", string(c))
	})
}

// ensureBucket fails with a *BucketNotExistError for a missing bucket, or
// creates it when asked. HeadBucket is retried like any request, so start-up
// survives a store that is still coming up.
func (b *S3Bucket) ensureBucket(ctx context.Context, region string, create bool) error {
	err := b.do(ctx, "head bucket", b.bucket, func(ctx context.Context) error {
		_, err := b.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(b.bucket)})
		return err
	})
	if err == nil {
		return nil
	}
	if !isS3NotFound(err) && apiCode(err) != "NoSuchBucket" {
		return fmt.Errorf("objstore: check bucket %q: %w", b.bucket, err)
	}
	if !create {
		return &BucketNotExistError{Bucket: b.bucket}
	}
	in := &s3.CreateBucketInput{Bucket: aws.String(b.bucket)}
	if region != "us-east-1" {
		// AWS rejects an explicit us-east-1 constraint and requires one
		// everywhere else.
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraint(region),
		}
	}
	err = b.do(ctx, "create bucket", b.bucket, func(ctx context.Context) error {
		_, err := b.client.CreateBucket(ctx, in)
		switch apiCode(err) {
		case "BucketAlreadyOwnedByYou", "BucketAlreadyExists":
			return nil // another node won the race
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("objstore: create bucket %q: %w", b.bucket, err)
	}
	b.logger.Info("objstore: created bucket")
	return nil
}

// do runs one S3 request under the retry policy, taking a semaphore slot
// for each attempt (not across backoff sleeps, which would starve others).
func (b *S3Bucket) do(ctx context.Context, op, key string, fn func(ctx context.Context) error) error {
	return b.retry.do(ctx, op, key, func(ctx context.Context) error {
		select {
		case b.sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		defer func() { <-b.sem }()
		return fn(ctx)
	})
}

func (b *S3Bucket) objectKey(key string) string { return b.prefix + key }

// Get returns the whole object.
func (b *S3Bucket) Get(ctx context.Context, key string) ([]byte, error) {
	if err := validateKey(key); err != nil {
		return nil, err
	}
	var data []byte
	err := b.do(ctx, "get", key, func(ctx context.Context) error {
		out, err := b.client.GetObject(ctx, &s3.GetObjectInput{
			Bucket: aws.String(b.bucket),
			Key:    aws.String(b.objectKey(key)),
		})
		if err != nil {
			return err
		}
		data, err = readBody(out.Body, out.ContentLength)
		return err
	})
	if err != nil {
		return nil, b.wrapErr("get", key, err)
	}
	return data, nil
}

// GetRange returns length bytes starting at off, with one ranged GET.
func (b *S3Bucket) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	if err := validateKey(key); err != nil {
		return nil, err
	}
	if err := checkRange(off, length); err != nil {
		return nil, err
	}
	if length == 0 {
		// "bytes=off-(off-1)" is not a valid Range and S3 would answer with
		// the whole object; check existence and bounds instead.
		a, err := b.Stat(ctx, key)
		if err != nil {
			return nil, err
		}
		if off > a.Size {
			return nil, fmt.Errorf("%w: %q offset %d past size %d", ErrInvalidRange, key, off, a.Size)
		}
		return []byte{}, nil
	}
	var data []byte
	err := b.do(ctx, "get range", key, func(ctx context.Context) error {
		out, err := b.client.GetObject(ctx, &s3.GetObjectInput{
			Bucket: aws.String(b.bucket),
			Key:    aws.String(b.objectKey(key)),
			Range:  aws.String(fmt.Sprintf("bytes=%d-%d", off, off+length-1)),
		})
		if err != nil {
			return err
		}
		data, err = readBody(out.Body, out.ContentLength)
		return err
	})
	if err != nil {
		if isS3InvalidRange(err) {
			return nil, fmt.Errorf("%w: %q offset %d length %d past end of object", ErrInvalidRange, key, off, length)
		}
		return nil, b.wrapErr("get range", key, err)
	}
	if int64(len(data)) != length {
		// S3 truncates a range that starts inside the object but ends past it.
		return nil, fmt.Errorf("%w: %q offset %d length %d past end of object (got %d bytes)", ErrInvalidRange, key, off, length, len(data))
	}
	return data, nil
}

// readBody reads and closes a response body. A connection that breaks
// mid-body shows up as io.ErrUnexpectedEOF, which the retry policy retries.
func readBody(body io.ReadCloser, contentLength *int64) ([]byte, error) {
	defer body.Close()
	if contentLength != nil && *contentLength >= 0 {
		buf := make([]byte, *contentLength)
		if _, err := io.ReadFull(body, buf); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		return buf, nil
	}
	return io.ReadAll(body)
}

// Stat returns the object's attributes.
func (b *S3Bucket) Stat(ctx context.Context, key string) (Attrs, error) {
	if err := validateKey(key); err != nil {
		return Attrs{}, err
	}
	var a Attrs
	err := b.do(ctx, "stat", key, func(ctx context.Context) error {
		out, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{
			Bucket: aws.String(b.bucket),
			Key:    aws.String(b.objectKey(key)),
		})
		if err != nil {
			return err
		}
		a = Attrs{Key: key, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}
		return nil
	})
	if err != nil {
		return Attrs{}, b.wrapErr("stat", key, err)
	}
	return a, nil
}

// List calls fn for every object whose key starts with prefix, in lexical
// key order (S3 lists in UTF-8 byte order, which is Go's string order).
func (b *S3Bucket) List(ctx context.Context, prefix string, fn func(Attrs) error) error {
	p := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(b.bucket),
		Prefix: aws.String(b.prefix + prefix),
	})
	for p.HasMorePages() {
		var page *s3.ListObjectsV2Output
		// A failed NextPage leaves the paginator's token untouched, so
		// retrying it fetches the same page again.
		err := b.do(ctx, "list", prefix, func(ctx context.Context) error {
			var err error
			page, err = p.NextPage(ctx)
			return err
		})
		if err != nil {
			return b.wrapErr("list", prefix, err)
		}
		for _, obj := range page.Contents {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("objstore: list %q: %w", prefix, err)
			}
			full := aws.ToString(obj.Key)
			key, ok := strings.CutPrefix(full, b.prefix)
			if !ok {
				continue
			}
			if err := fn(Attrs{Key: key, Size: aws.ToInt64(obj.Size), ModTime: aws.ToTime(obj.LastModified)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Put stores data under key. S3 PUTs are atomic and durable once answered.
func (b *S3Bucket) Put(ctx context.Context, key string, data []byte) error {
	if err := validateKey(key); err != nil {
		return err
	}
	err := b.do(ctx, "put", key, func(ctx context.Context) error {
		// A fresh reader per attempt: a retried PUT must send the body again.
		_, err := b.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket:        aws.String(b.bucket),
			Key:           aws.String(b.objectKey(key)),
			Body:          bytes.NewReader(data),
			ContentLength: aws.Int64(int64(len(data))),
		})
		return err
	})
	if err != nil {
		return b.wrapErr("put", key, err)
	}
	return nil
}

// Delete removes key; a missing key is not an error.
func (b *S3Bucket) Delete(ctx context.Context, key string) error {
	if err := validateKey(key); err != nil {
		return err
	}
	err := b.do(ctx, "delete", key, func(ctx context.Context) error {
		_, err := b.client.DeleteObject(ctx, &s3.DeleteObjectInput{
			Bucket: aws.String(b.bucket),
			Key:    aws.String(b.objectKey(key)),
		})
		if isS3NotFound(err) {
			return nil
		}
		return err
	})
	if err != nil {
		return b.wrapErr("delete", key, err)
	}
	return nil
}

// Close drops idle connections. Calls in flight are not interrupted.
func (b *S3Bucket) Close() error {
	b.transport.CloseIdleConnections()
	return nil
}

// wrapErr turns a missing object into ErrNotFound and prefixes the rest.
func (b *S3Bucket) wrapErr(op, key string, err error) error {
	if isS3NotFound(err) {
		return fmt.Errorf("%w: %q", ErrNotFound, key)
	}
	if strings.HasPrefix(err.Error(), "objstore: ") {
		return err
	}
	return fmt.Errorf("objstore: %s %q: %w", op, key, err)
}

func apiCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// isS3NotFound reports a missing object. HEAD responses carry no body, so
// a 404 from HeadObject has only the generic "NotFound" code.
func isS3NotFound(err error) bool {
	if err == nil {
		return false
	}
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	switch apiCode(err) {
	case "NoSuchKey", "NotFound":
		return true
	case "NoSuchBucket":
		return false
	}
	return httpStatus(err) == http.StatusNotFound
}

func isS3InvalidRange(err error) bool {
	return apiCode(err) == "InvalidRange" || httpStatus(err) == http.StatusRequestedRangeNotSatisfiable
}

// retryableCodes adds the S3 and MinIO codes for "try again" that the SDK's
// default lists leave out.
var retryableCodes = map[string]bool{
	"InternalError":              true,
	"ServiceUnavailable":         true,
	"SlowDown":                   true,
	"RequestTimeout":             true,
	"XMinioServerNotInitialized": true,
	"XMinioReadQuorum":           true,
	"XMinioWriteQuorum":          true,
}

var sdkRetryables = retry.IsErrorRetryables(retry.DefaultRetryables)

// isS3Retryable says whether a failed S3 request may succeed if sent again:
// 5xx and 429 answers, throttling codes, timeouts, connection errors and
// bodies cut short. Cancellation is never retried.
func isS3Retryable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	if isTransientIO(err) {
		return true
	}
	if retryableCodes[apiCode(err)] {
		return true
	}
	if s := httpStatus(err); s >= 500 || s == http.StatusTooManyRequests {
		return true
	}
	return sdkRetryables.IsErrorRetryable(err) == aws.TrueTernary
}
