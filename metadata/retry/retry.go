package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Policy is how hard Do retries. The zero value retries at once, for ever.
type Policy struct {
	// BaseDelay is the backoff unit: the ceiling of the first retry's delay.
	BaseDelay time.Duration
	// MaxDelay caps the ceiling; below BaseDelay it counts as BaseDelay.
	MaxDelay time.Duration
	// MaxAttempts counts the first try; 0 (or less) means no bound.
	MaxAttempts int
	// AttemptTimeout bounds one attempt; 0 means none (ctx alone bounds it).
	AttemptTimeout time.Duration
}

// Backoff returns the delay before retry n (n >= 1): uniformly random in
// [0, min(MaxDelay, BaseDelay·2^(n-1))].
func (p Policy) Backoff(n int) time.Duration {
	return jitter(p.ceiling(n))
}

// ceiling is the largest delay Backoff(n) returns.
func (p Policy) ceiling(n int) time.Duration {
	if p.BaseDelay <= 0 {
		return 0
	}
	ceiling := max(p.MaxDelay, p.BaseDelay)
	// BaseDelay<<shift <= ceiling, checked without overflowing.
	if shift := max(n-1, 0); shift < 63 && p.BaseDelay <= ceiling>>shift {
		ceiling = p.BaseDelay << shift
	}
	return ceiling
}

func jitter(ceiling time.Duration) time.Duration {
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling + 1)
}

// Sleep waits d or until ctx ends, whichever is first, and returns ctx.Err()
// in the second case (also when ctx had ended already).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ErrExhausted is wrapped by the error Do returns after MaxAttempts failed
// attempts (together with the last attempt's error).
var ErrExhausted = errors.New("giving up")

// Permanent marks err as one Do must not retry. Do returns err itself when
// fn returned Permanent(err), and fn's error as it is when that only wraps
// a Permanent one. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// IsPermanent reports whether err (or an error it wraps) was marked with
// Permanent.
func IsPermanent(err error) bool {
	var pe *permanentError
	return errors.As(err, &pe)
}

// Option adjusts one Do call. Options are plain values (no closures over
// Do's state), so passing them costs no allocation.
type Option struct {
	retryable func(error) bool
	onError   func(err error, attempt int, delay time.Duration)
	sleep     func(ctx context.Context, d time.Duration) error
}

// Retryable makes Do retry only the errors f accepts (and attempts that
// overran AttemptTimeout). Without it every error not marked Permanent is
// retried.
func Retryable(f func(error) bool) Option { return Option{retryable: f} }

// OnError is called after each failed attempt that will be retried, with
// the attempt's number (from 1) and the delay before the next one; it is
// the place to log.
func OnError(f func(err error, attempt int, delay time.Duration)) Option {
	return Option{onError: f}
}

// WithSleep replaces Sleep between attempts, so tests can record the delays
// instead of waiting them out. f must return a non-nil error only when ctx
// has ended.
func WithSleep(f func(ctx context.Context, d time.Duration) error) Option {
	return Option{sleep: f}
}

// Do calls fn until it succeeds, fails for good or ctx ends, sleeping
// p.Backoff(n) after the n-th failed attempt; each attempt gets a ctx
// bounded by p.AttemptTimeout when that is set. It returns nil on success;
// the unwrapped error of an attempt that failed permanently (Permanent, or
// refused by Retryable); an error wrapping ErrExhausted and the last error
// after p.MaxAttempts attempts; or, once ctx has ended, an error wrapping
// ctx.Err() that names the last failure in its message.
func Do(ctx context.Context, p Policy, fn func(ctx context.Context) error, opts ...Option) error {
	var o Option
	for _, x := range opts {
		if x.retryable != nil {
			o.retryable = x.retryable
		}
		if x.onError != nil {
			o.onError = x.onError
		}
		if x.sleep != nil {
			o.sleep = x.sleep
		}
	}
	if o.sleep == nil {
		o.sleep = Sleep
	}
	for attempt := 1; ; attempt++ {
		err, timedOut := runAttempt(ctx, p.AttemptTimeout, fn)
		if err == nil {
			return nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return withCtxErr(cerr, err)
		}
		if pe, ok := err.(*permanentError); ok {
			return pe.err
		}
		if IsPermanent(err) {
			return err
		}
		if !timedOut && o.retryable != nil && !o.retryable(err) {
			return err
		}
		if p.MaxAttempts > 0 && attempt >= p.MaxAttempts {
			return fmt.Errorf("%w after %d attempts: %w", ErrExhausted, attempt, err)
		}
		delay := p.Backoff(attempt)
		if o.onError != nil {
			o.onError(err, attempt, delay)
		}
		if serr := o.sleep(ctx, delay); serr != nil {
			return withCtxErr(serr, err)
		}
	}
}

// runAttempt runs fn once, under timeout if it is positive, and reports
// whether the attempt overran timeout on its own (ctx still alive).
func runAttempt(ctx context.Context, timeout time.Duration, fn func(ctx context.Context) error) (err error, timedOut bool) {
	if timeout <= 0 {
		return fn(ctx), false
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err = fn(actx)
	return err, errors.Is(actx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
}

// withCtxErr makes sure err matches ctxErr under errors.Is while keeping the
// underlying failure in the message. The failure is not wrapped: a caller
// that tests for, say, a not-found error must not mistake a cancelled call
// for one.
func withCtxErr(ctxErr, err error) error {
	if errors.Is(err, ctxErr) {
		return err
	}
	return fmt.Errorf("%w (last error: %v)", ctxErr, err)
}
