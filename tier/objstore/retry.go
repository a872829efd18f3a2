package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"
)

// retrier runs an operation until it succeeds, fails for good, runs out of
// attempts, or its ctx ends. It is the only retry loop for a remote store:
// the SDK's own retryer is switched off so the bound in RetryConfig is the
// whole truth (the SDK's standard retryer also has a client-side retry quota
// that would give up early during exactly the outages we mean to ride out).
type retrier struct {
	cfg       RetryConfig
	retryable func(error) bool
	logger    *slog.Logger
	// sleep waits d or until ctx ends; replaceable so tests need not wait.
	sleep func(ctx context.Context, d time.Duration) error
}

func newRetrier(cfg RetryConfig, retryable func(error) bool, logger *slog.Logger) *retrier {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &retrier{cfg: cfg.withDefaults(), retryable: retryable, logger: logger, sleep: sleepCtx}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// backoff returns the full-jitter delay before retry number n (n >= 1):
// uniform in [0, min(MaxDelay, BaseDelay*2^(n-1))].
func (r *retrier) backoff(n int) time.Duration {
	ceiling := r.cfg.MaxDelay
	if shift := n - 1; shift < 32 {
		if d := r.cfg.BaseDelay << shift; d > 0 && d < ceiling {
			ceiling = d
		}
	}
	return rand.N(ceiling + 1)
}

// do runs fn with a per-attempt timeout. A failed attempt is retried when it
// timed out on its own (not because ctx ended) or when r.retryable says so.
// The error returned always wraps ctx.Err() once ctx has ended, so callers
// can test for cancellation with errors.Is.
func (r *retrier) do(ctx context.Context, op, key string, fn func(ctx context.Context) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, r.cfg.AttemptTimeout)
		err = fn(actx)
		attemptTimedOut := errors.Is(actx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
		cancel()
		if err == nil {
			return nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return withCtxErr(cerr, err)
		}
		if !attemptTimedOut && !r.retryable(err) {
			return err
		}
		if attempt >= r.cfg.MaxAttempts {
			return fmt.Errorf("objstore: %s %q: giving up after %d attempts: %w", op, key, attempt, err)
		}
		delay := r.backoff(attempt)
		// One failed attempt is routine (a SlowDown, a dropped connection);
		// several in a row mean the store is in trouble and operators should
		// hear about it.
		level := slog.LevelDebug
		if attempt >= 3 {
			level = slog.LevelWarn
		}
		r.logger.Log(ctx, level, "objstore: retrying", "op", op, "key", key, "attempt", attempt, "delay", delay, "err", err)
		if serr := r.sleep(ctx, delay); serr != nil {
			return withCtxErr(serr, err)
		}
	}
}

// withCtxErr makes sure err matches ctxErr under errors.Is while keeping the
// underlying failure in the message.
func withCtxErr(ctxErr, err error) error {
	if errors.Is(err, ctxErr) {
		return err
	}
	return fmt.Errorf("%w (last error: %v)", ctxErr, err)
}

// isTransientIO reports read errors that mean the connection broke mid-body.
func isTransientIO(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF)
}
