package objstore

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults applied by Open to zero-valued Options fields.
const (
	DefaultMaxConcurrency = 32
	DefaultMaxAttempts    = 8
	DefaultBaseDelay      = 100 * time.Millisecond
	DefaultMaxDelay       = 5 * time.Second
	DefaultAttemptTimeout = 2 * time.Minute
)

// Options configures Open. The zero value is usable: every zero field takes
// its default.
type Options struct {
	// CreateBucket creates a missing bucket (or filesystem root) instead of
	// failing Open. Off by default so a typo in a bucket name fails loudly
	// rather than writing data somewhere nobody will look.
	CreateBucket bool
	// MaxConcurrency bounds the requests in flight to a remote store at once;
	// callers beyond it wait (honouring ctx). Default 32.
	MaxConcurrency int
	// Retry is the retry policy for transient remote-store failures.
	Retry RetryConfig
	// TLS is the client TLS configuration for https endpoints (a private
	// CA, a client certificate); nil uses the system's CAs (and
	// AWS_CA_BUNDLE).
	TLS *tls.Config
	// AccessKeyID, when set, makes the S3 store use static credentials
	// (with SecretAccessKey and SessionToken) in place of the AWS credential
	// chain.
	AccessKeyID string
	// SecretAccessKey is the secret paired with AccessKeyID.
	SecretAccessKey string
	// SessionToken is the optional session token paired with AccessKeyID.
	SessionToken string
}

// RetryConfig bounds how hard a remote store retries a transient failure
// (5xx, SlowDown, throttling, timeouts, connection errors). The delay before
// retry n is uniformly random in [0, min(MaxDelay, BaseDelay*2^n)] ("full
// jitter"), so nodes that failed together do not retry together. The worst
// case for one call is therefore bounded by
// MaxAttempts*AttemptTimeout + (MaxAttempts-1)*MaxDelay, and ctx cancellation
// stops it at once.
type RetryConfig struct {
	// MaxAttempts counts the first try; 1 disables retries. Default 8.
	MaxAttempts int
	// BaseDelay is the backoff unit. Default 100ms.
	BaseDelay time.Duration
	// MaxDelay caps one backoff sleep. Default 5s.
	MaxDelay time.Duration
	// AttemptTimeout caps one attempt, so a store that accepts a connection
	// and then hangs costs a retry instead of the whole call. Default 2m.
	AttemptTimeout time.Duration
}

func (c RetryConfig) withDefaults() RetryConfig {
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.BaseDelay <= 0 {
		c.BaseDelay = DefaultBaseDelay
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = DefaultMaxDelay
	}
	if c.MaxDelay < c.BaseDelay {
		c.MaxDelay = c.BaseDelay
	}
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = DefaultAttemptTimeout
	}
	return c
}

func (o Options) withDefaults() Options {
	if o.MaxConcurrency <= 0 {
		o.MaxConcurrency = DefaultMaxConcurrency
	}
	o.Retry = o.Retry.withDefaults()
	return o
}

// Open returns the Bucket named by rawURL:
//
//	file:///abs/path    a FileBucket rooted at /abs/path
//	s3://bucket[/prefix][?endpoint=URL&region=R&path_style=true]
//
// For s3, endpoint overrides the AWS endpoint (MinIO: http://host:9000),
// path_style=true addresses the bucket in the path rather than the host name
// (MinIO needs it), and region defaults to the AWS configuration or
// us-east-1. Unknown query parameters are an error, so a misspelt option is
// not silently ignored. A missing bucket is a *BucketNotExistError unless
// opts.CreateBucket is set. A nil logger discards.
func Open(ctx context.Context, rawURL string, opts Options, logger *slog.Logger) (Bucket, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts = opts.withDefaults()
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("objstore: bad object store URL %q: %w", rawURL, err)
	}
	switch u.Scheme {
	case "file":
		root, err := parseFileURL(u, rawURL)
		if err != nil {
			return nil, err
		}
		b, err := NewFileBucket(root, opts, logger)
		if err != nil {
			return nil, err
		}
		return b, nil
	case "s3":
		cfg, err := parseS3URL(u, rawURL)
		if err != nil {
			return nil, err
		}
		b, err := NewS3Bucket(ctx, cfg, opts, logger)
		if err != nil {
			return nil, err
		}
		return b, nil
	case "":
		return nil, fmt.Errorf("objstore: object store URL %q has no scheme (want file:///abs/path or s3://bucket/prefix)", rawURL)
	default:
		return nil, fmt.Errorf("objstore: unsupported scheme %q in %q (want file or s3)", u.Scheme, rawURL)
	}
}

func parseFileURL(u *url.URL, rawURL string) (string, error) {
	if u.Host != "" && u.Host != "localhost" {
		return "", fmt.Errorf("objstore: file URL %q must have an empty host (file:///abs/path)", rawURL)
	}
	if u.Opaque != "" || !strings.HasPrefix(u.Path, "/") {
		return "", fmt.Errorf("objstore: file URL %q needs an absolute path (file:///abs/path)", rawURL)
	}
	if len(u.Query()) != 0 || u.Fragment != "" {
		return "", fmt.Errorf("objstore: file URL %q takes no query or fragment", rawURL)
	}
	return u.Path, nil
}

// S3Config names an S3 bucket and how to reach it; Open fills it from an
// s3:// URL.
type S3Config struct {
	// Bucket is the bucket name.
	Bucket string
	// Prefix is prepended (with a "/") to every key, so several clusters or
	// tests can share one bucket. Empty means the bucket root.
	Prefix string
	// Endpoint overrides the AWS endpoint, e.g. http://127.0.0.1:9000 for MinIO.
	Endpoint string
	// Region is the signing region; empty takes the AWS configuration's, or
	// us-east-1.
	Region string
	// PathStyle addresses the bucket as http://endpoint/bucket (MinIO) rather
	// than http://bucket.endpoint.
	PathStyle bool
}

func parseS3URL(u *url.URL, rawURL string) (S3Config, error) {
	if u.Opaque != "" {
		return S3Config{}, fmt.Errorf("objstore: s3 URL %q must look like s3://bucket/prefix", rawURL)
	}
	cfg := S3Config{
		Bucket: u.Host,
		Prefix: strings.Trim(u.Path, "/"),
	}
	if cfg.Bucket == "" {
		return S3Config{}, fmt.Errorf("objstore: s3 URL %q has no bucket (s3://bucket/prefix)", rawURL)
	}
	if u.User != nil || u.Port() != "" {
		return S3Config{}, fmt.Errorf("objstore: s3 URL %q: put the endpoint in ?endpoint= and credentials in the environment", rawURL)
	}
	for name, vals := range u.Query() {
		if len(vals) != 1 {
			return S3Config{}, fmt.Errorf("objstore: s3 URL %q: parameter %q given %d times", rawURL, name, len(vals))
		}
		v := vals[0]
		switch name {
		case "endpoint":
			eu, err := url.Parse(v)
			if err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" {
				return S3Config{}, fmt.Errorf("objstore: s3 URL %q: endpoint %q must be http(s)://host[:port]", rawURL, v)
			}
			cfg.Endpoint = v
		case "region":
			cfg.Region = v
		case "path_style":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return S3Config{}, fmt.Errorf("objstore: s3 URL %q: path_style %q is not a boolean", rawURL, v)
			}
			cfg.PathStyle = b
		default:
			return S3Config{}, fmt.Errorf("objstore: s3 URL %q: unknown parameter %q (want endpoint, region, path_style)", rawURL, name)
		}
	}
	return cfg, nil
}
