package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/strata-io/strata/metadata/retry"
)

// retrier runs a remote-store operation under retry.Do with the bucket's
// RetryConfig. It is the only retry loop for a remote store: the SDK's own
// retryer is switched off so the bound in RetryConfig is the whole truth
// (the SDK's standard retryer also has a client-side retry quota that would
// give up early during exactly the outages we mean to ride out).
type retrier struct {
	policy    retry.Policy
	retryable func(error) bool
	logger    *slog.Logger
	// sleep waits d or until ctx ends; replaceable so tests need not wait.
	sleep func(ctx context.Context, d time.Duration) error
}

func newRetrier(cfg RetryConfig, retryable func(error) bool, logger *slog.Logger) *retrier {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	return &retrier{
		policy:    retry.Policy{MaxAttempts: cfg.MaxAttempts, BaseDelay: cfg.BaseDelay, MaxDelay: cfg.MaxDelay, AttemptTimeout: cfg.AttemptTimeout},
		retryable: retryable,
		logger:    logger,
		sleep:     retry.Sleep,
	}
}

// do runs fn with a per-attempt timeout. A failed attempt is retried when it
// timed out on its own (not because ctx ended) or when r.retryable says so.
// The error returned always wraps ctx.Err() once ctx has ended, so callers
// can test for cancellation with errors.Is.
func (r *retrier) do(ctx context.Context, op, key string, fn func(ctx context.Context) error) error {
	err := retry.Do(ctx, r.policy, fn,
		retry.Retryable(r.retryable),
		retry.WithSleep(r.sleep),
		retry.OnError(func(err error, attempt int, delay time.Duration) {
			// One failed attempt is routine (a SlowDown, a dropped
			// connection); several in a row mean the store is in trouble
			// and operators should hear about it.
			level := slog.LevelDebug
			if attempt >= 3 {
				level = slog.LevelWarn
			}
			r.logger.Log(ctx, level, "objstore: retrying", "op", op, "key", key, "attempt", attempt, "delay", delay, "err", err)
		}))
	if errors.Is(err, retry.ErrExhausted) {
		return fmt.Errorf("objstore: %s %q: %w", op, key, err)
	}
	return err
}

// isTransientIO reports read errors that mean the connection broke mid-body.
func isTransientIO(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF)
}
