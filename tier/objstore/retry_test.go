package objstore

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-io/strata/metadata/retry"
)

var errTransient = errors.New("transient")
var errPermanent = errors.New("permanent")

func isTransientForTest(err error) bool { return errors.Is(err, errTransient) }

// noSleep records backoff delays instead of sleeping, so the tests check the
// schedule without waiting for it.
func noSleep(delays *[]time.Duration) func(ctx context.Context, d time.Duration) error {
	return func(ctx context.Context, d time.Duration) error {
		*delays = append(*delays, d)
		return ctx.Err()
	}
}

func TestRetrierAttempts(t *testing.T) {
	cfg := RetryConfig{MaxAttempts: 5, BaseDelay: 10 * time.Millisecond, MaxDelay: 40 * time.Millisecond, AttemptTimeout: time.Second}
	tests := []struct {
		name         string
		failures     int   // attempts that fail before success
		failWith     error // error of a failing attempt
		wantAttempts int
		wantErr      error
	}{
		{"success first try", 0, errTransient, 1, nil},
		{"transient then success", 3, errTransient, 4, nil},
		{"success on last attempt", 4, errTransient, 5, nil},
		{"transient until exhausted", 100, errTransient, 5, errTransient},
		{"permanent is not retried", 100, errPermanent, 1, errPermanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var delays []time.Duration
			r := newRetrier(cfg, isTransientForTest, nil)
			r.sleep = noSleep(&delays)
			attempts := 0
			err := r.do(t.Context(), "put", "k", func(ctx context.Context) error {
				attempts++
				if attempts <= tt.failures {
					return tt.failWith
				}
				return nil
			})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if attempts != tt.wantAttempts {
				t.Fatalf("attempts = %d, want %d", attempts, tt.wantAttempts)
			}
			if len(delays) != attempts-1 {
				t.Fatalf("slept %d times for %d attempts", len(delays), attempts)
			}
			for i, d := range delays {
				ceiling := min(cfg.MaxDelay, cfg.BaseDelay<<i)
				if d < 0 || d > ceiling {
					t.Fatalf("delay %d = %v, want within [0, %v]", i+1, d, ceiling)
				}
			}
		})
	}
}

// Full jitter: delays spread over [0, ceiling], not clustered at it.
func TestRetrierBackoffIsJittered(t *testing.T) {
	r := newRetrier(RetryConfig{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}, isTransientForTest, nil)
	var low, high int
	for range 1000 {
		d := r.policy.Backoff(20) // ceiling is MaxDelay
		if d < 0 || d > time.Second {
			t.Fatalf("backoff = %v, outside [0, 1s]", d)
		}
		if d < 250*time.Millisecond {
			low++
		}
		if d > 750*time.Millisecond {
			high++
		}
	}
	if low < 150 || high < 150 {
		t.Fatalf("backoff not spread over [0, MaxDelay]: %d below 25%%, %d above 75%% of 1000", low, high)
	}
	if d := r.policy.Backoff(1); d > 100*time.Millisecond {
		t.Fatalf("first backoff %v exceeds BaseDelay", d)
	}
}

// An attempt that hangs past AttemptTimeout is abandoned and retried.
func TestRetrierAttemptTimeout(t *testing.T) {
	r := newRetrier(RetryConfig{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, AttemptTimeout: 20 * time.Millisecond}, isTransientForTest, nil)
	attempts := 0
	err := r.do(t.Context(), "get", "k", func(ctx context.Context) error {
		attempts++
		if attempts < 3 {
			<-ctx.Done() // hang until the attempt times out
			return ctx.Err()
		}
		return nil
	})
	if err != nil || attempts != 3 {
		t.Fatalf("err = %v after %d attempts, want success on attempt 3", err, attempts)
	}
}

// Cancelling the caller's ctx ends the retry loop at once, during an attempt
// or during a backoff sleep, with an error that matches context.Canceled.
func TestRetrierCancel(t *testing.T) {
	for _, during := range []string{"attempt", "sleep"} {
		t.Run(during, func(t *testing.T) {
			r := newRetrier(RetryConfig{MaxAttempts: 1000, BaseDelay: time.Hour, MaxDelay: time.Hour, AttemptTimeout: time.Hour}, isTransientForTest, nil)
			ctx, cancel := context.WithCancel(t.Context())
			var attempts atomic.Int32
			done := make(chan error, 1)
			go func() {
				done <- r.do(ctx, "put", "k", func(ctx context.Context) error {
					if attempts.Add(1) == 1 && during == "attempt" {
						<-ctx.Done()
						return ctx.Err()
					}
					return errTransient // then sleep an hour
				})
			}()
			deadline := time.Now().Add(10 * time.Second)
			for attempts.Load() == 0 {
				if time.Now().After(deadline) {
					t.Fatal("first attempt never ran")
				}
				time.Sleep(time.Millisecond)
			}
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("err = %v, want context.Canceled", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("retry loop did not stop within 5s of cancel")
			}
			if n := attempts.Load(); n != 1 {
				t.Fatalf("%d attempts, want 1", n)
			}
		})
	}
}

func TestRetryConfigDefaults(t *testing.T) {
	c := RetryConfig{}.withDefaults()
	if c.MaxAttempts != DefaultMaxAttempts || c.BaseDelay != DefaultBaseDelay || c.MaxDelay != DefaultMaxDelay || c.AttemptTimeout != DefaultAttemptTimeout {
		t.Fatalf("defaults = %+v", c)
	}
	if c := (RetryConfig{BaseDelay: time.Second, MaxDelay: time.Millisecond}).withDefaults(); c.MaxDelay != time.Second {
		t.Fatalf("MaxDelay below BaseDelay not raised: %+v", c)
	}
	// retry.Object documents the object-store tuning next to the other
	// call sites' (metadata/retry/policies.go); it must say what Open does.
	if p := newRetrier(RetryConfig{}, isTransientForTest, nil).policy; p != retry.Object {
		t.Fatalf("default policy %+v, retry.Object %+v", p, retry.Object)
	}
}

// The error after the last attempt names the operation and key, and wraps
// both retry.ErrExhausted and the last failure.
func TestRetrierExhaustedError(t *testing.T) {
	var delays []time.Duration
	r := newRetrier(RetryConfig{MaxAttempts: 2}, isTransientForTest, nil)
	r.sleep = noSleep(&delays)
	err := r.do(t.Context(), "put", "a/b", func(context.Context) error { return errTransient })
	if !errors.Is(err, errTransient) || !errors.Is(err, retry.ErrExhausted) || err.Error() != `objstore: put "a/b": giving up after 2 attempts: transient` {
		t.Fatalf("err = %q", err)
	}
}

func TestValidateKey(t *testing.T) {
	good := []string{"a", "a/b", "a.b/c-d_e", "topic-0/00000000000000000000.seg", ".hidden", "a/.b", "..a", "a..", "a/b..c"}
	bad := []string{"", "/a", "a/", "a//b", ".", "..", "a/./b", "a/../b", "../a", "a/..", "x\x00y", ".objstore-tmp-1", "a/.objstore-tmp-x/b"}
	for _, k := range good {
		if err := validateKey(k); err != nil {
			t.Errorf("validateKey(%q) = %v, want nil", k, err)
		}
	}
	for _, k := range bad {
		if err := validateKey(k); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("validateKey(%q) = %v, want ErrInvalidKey", k, err)
		}
	}
}
