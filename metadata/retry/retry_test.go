package retry

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

var (
	errTransient = errors.New("transient")
	errFatal     = errors.New("fatal")
)

// recordSleep records the delays instead of sleeping, so a test checks the
// schedule without waiting it out.
func recordSleep(delays *[]time.Duration) Option {
	return WithSleep(func(ctx context.Context, d time.Duration) error {
		*delays = append(*delays, d)
		return ctx.Err()
	})
}

// failing returns an fn that fails with err its first n calls, then succeeds,
// and a pointer to its call count.
func failing(n int, err error) (func(context.Context) error, *int) {
	calls := new(int)
	return func(context.Context) error {
		*calls++
		if *calls <= n {
			return err
		}
		return nil
	}, calls
}

func TestBackoffBounds(t *testing.T) {
	p := Policy{BaseDelay: 10 * time.Millisecond, MaxDelay: 300 * time.Millisecond}
	want := []time.Duration{10, 20, 40, 80, 160, 300, 300}
	for i, w := range want {
		n := i + 1
		if c := p.ceiling(n); c != w*time.Millisecond {
			t.Fatalf("ceiling(%d) = %v, want %v", n, c, w*time.Millisecond)
		}
		for range 200 {
			if d := p.Backoff(n); d < 0 || d > w*time.Millisecond {
				t.Fatalf("Backoff(%d) = %v, outside [0, %v]", n, d, w*time.Millisecond)
			}
		}
	}
	// Huge attempt numbers neither overflow nor exceed the cap.
	for _, n := range []int{62, 63, 64, 1000, 1 << 30} {
		if c := p.ceiling(n); c != 300*time.Millisecond {
			t.Fatalf("ceiling(%d) = %v, want the cap", n, c)
		}
	}
	big := Policy{BaseDelay: time.Hour, MaxDelay: 1 << 62}
	for n := 1; n < 70; n++ {
		if c := big.ceiling(n); c <= 0 || c > 1<<62 {
			t.Fatalf("ceiling(%d) = %v with a huge cap", n, c)
		}
	}
	// MaxDelay below BaseDelay counts as BaseDelay; no BaseDelay, no wait.
	if c := (Policy{BaseDelay: time.Second, MaxDelay: time.Millisecond}).ceiling(5); c != time.Second {
		t.Fatalf("ceiling with MaxDelay < BaseDelay = %v, want 1s", c)
	}
	if d := (Policy{}).Backoff(3); d != 0 {
		t.Fatalf("zero Policy Backoff = %v", d)
	}
}

// Full jitter: delays spread over [0, ceiling], not clustered at it.
func TestBackoffIsFullJitter(t *testing.T) {
	p := Policy{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}
	var low, high int
	for range 2000 {
		d := p.Backoff(20)
		if d < 250*time.Millisecond {
			low++
		}
		if d > 750*time.Millisecond {
			high++
		}
	}
	if low < 300 || high < 300 {
		t.Fatalf("not spread over [0, MaxDelay]: %d below 25%%, %d above 75%% of 2000", low, high)
	}
}

func TestDoSucceedsAfterTransientFailures(t *testing.T) {
	var delays []time.Duration
	p := Policy{BaseDelay: 10 * time.Millisecond, MaxDelay: 40 * time.Millisecond}
	fn, calls := failing(5, errTransient)
	var hooked []int
	err := Do(t.Context(), p, fn, recordSleep(&delays), OnError(func(err error, attempt int, delay time.Duration) {
		if !errors.Is(err, errTransient) {
			t.Errorf("OnError err = %v", err)
		}
		hooked = append(hooked, attempt)
		if delay < 0 || delay > p.ceiling(attempt) {
			t.Errorf("OnError delay %v outside [0, %v]", delay, p.ceiling(attempt))
		}
	}))
	if err != nil || *calls != 6 {
		t.Fatalf("err = %v after %d calls, want success on call 6", err, *calls)
	}
	if fmt.Sprint(hooked) != "[1 2 3 4 5]" {
		t.Fatalf("OnError attempts = %v", hooked)
	}
	if len(delays) != 5 {
		t.Fatalf("slept %d times, want 5", len(delays))
	}
	for i, d := range delays {
		if c := p.ceiling(i + 1); d < 0 || d > c {
			t.Fatalf("delay %d = %v outside [0, %v]", i+1, d, c)
		}
	}
}

func TestDoPermanentStopsAtOnce(t *testing.T) {
	var delays []time.Duration
	p := Policy{BaseDelay: time.Hour, MaxDelay: time.Hour}

	fn, calls := failing(100, Permanent(errFatal))
	err := Do(t.Context(), p, fn, recordSleep(&delays))
	if err != errFatal || *calls != 1 || len(delays) != 0 {
		t.Fatalf("err = %v after %d calls, %d sleeps; want errFatal itself after 1 call", err, *calls, len(delays))
	}

	// A wrapped mark stops it too, and the error comes back as fn returned it.
	wrapped := fmt.Errorf("commit: %w", Permanent(errFatal))
	fn, calls = failing(100, wrapped)
	if err := Do(t.Context(), p, fn, recordSleep(&delays)); err != wrapped || *calls != 1 || !IsPermanent(err) || !errors.Is(err, errFatal) {
		t.Fatalf("err = %v after %d calls, want %v after 1", err, *calls, wrapped)
	}

	// So does an error the Retryable predicate refuses.
	fn, calls = failing(100, errFatal)
	err = Do(t.Context(), p, fn, recordSleep(&delays), Retryable(func(err error) bool { return errors.Is(err, errTransient) }))
	if err != errFatal || *calls != 1 || len(delays) != 0 {
		t.Fatalf("err = %v after %d calls, want errFatal after 1", err, *calls)
	}
	if Permanent(nil) != nil || IsPermanent(errFatal) {
		t.Fatal("Permanent(nil) or IsPermanent of an unmarked error")
	}
}

func TestDoMaxAttempts(t *testing.T) {
	var delays []time.Duration
	p := Policy{MaxAttempts: 4, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}
	fn, calls := failing(100, errTransient)
	err := Do(t.Context(), p, fn, recordSleep(&delays))
	if !errors.Is(err, ErrExhausted) || !errors.Is(err, errTransient) {
		t.Fatalf("err = %v, want ErrExhausted wrapping the last failure", err)
	}
	if *calls != 4 || len(delays) != 3 {
		t.Fatalf("%d calls, %d sleeps; want 4 and 3", *calls, len(delays))
	}
	if err.Error() != "giving up after 4 attempts: transient" {
		t.Fatalf("message %q", err)
	}
	// MaxAttempts 1: no retry at all.
	fn, calls = failing(100, errTransient)
	if err := Do(t.Context(), Policy{MaxAttempts: 1}, fn, recordSleep(&delays)); !errors.Is(err, ErrExhausted) || *calls != 1 {
		t.Fatalf("MaxAttempts 1: err = %v after %d calls", err, *calls)
	}
}

// An attempt that hangs past AttemptTimeout is abandoned and retried, even
// when the predicate would not retry the error it returns.
func TestDoAttemptTimeoutRetried(t *testing.T) {
	p := Policy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, AttemptTimeout: 20 * time.Millisecond}
	calls := 0
	err := Do(t.Context(), p, func(ctx context.Context) error {
		calls++
		if _, ok := ctx.Deadline(); !ok {
			t.Error("attempt ctx has no deadline")
		}
		if calls < 3 {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}, Retryable(func(error) bool { return false }))
	if err != nil || calls != 3 {
		t.Fatalf("err = %v after %d calls, want success on call 3", err, calls)
	}
	// Without AttemptTimeout the caller's ctx is passed as it is.
	ctx := t.Context()
	Do(ctx, Policy{}, func(actx context.Context) error {
		if actx != ctx {
			t.Error("attempt ctx is not the caller's without AttemptTimeout")
		}
		return nil
	})
}

// Ending the caller's ctx ends Do at once, during an attempt or during a
// backoff sleep, with an error that matches ctx.Err() and names the last
// failure, but does not match it.
func TestDoCtxEndWrapsCtxErr(t *testing.T) {
	for _, during := range []string{"attempt", "sleep"} {
		t.Run(during, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			var calls atomic.Int32
			done := make(chan error, 1)
			go func() {
				done <- Do(ctx, Policy{BaseDelay: time.Hour, MaxDelay: time.Hour, AttemptTimeout: time.Hour}, func(ctx context.Context) error {
					if calls.Add(1) == 1 && during == "attempt" {
						<-ctx.Done()
						return errTransient // a store that does not say why
					}
					return errTransient // then sleep an hour
				})
			}()
			for calls.Load() == 0 {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(5 * time.Millisecond) // let it reach the sleep
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("err = %v, want context.Canceled", err)
				}
				if errors.Is(err, errTransient) || err.Error() != "context canceled (last error: transient)" {
					t.Fatalf("err = %q, want the last failure in the message only", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Do did not return within 5s of cancel")
			}
			if n := calls.Load(); n != 1 {
				t.Fatalf("%d calls, want 1", n)
			}
		})
	}

	// A deadline, and an fn that returns the ctx error itself.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	err := Do(ctx, Policy{BaseDelay: time.Millisecond}, func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	if err != context.DeadlineExceeded {
		t.Fatalf("err = %v, want context.DeadlineExceeded as is", err)
	}
}

func TestSleep(t *testing.T) {
	if err := Sleep(t.Context(), time.Millisecond); err != nil {
		t.Fatalf("Sleep = %v", err)
	}
	if err := Sleep(t.Context(), 0); err != nil {
		t.Fatalf("Sleep(0) = %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	start := time.Now()
	if err := Sleep(ctx, time.Hour); err != context.Canceled {
		t.Fatalf("Sleep after cancel = %v", err)
	}
	if err := Sleep(ctx, 0); err != context.Canceled {
		t.Fatalf("Sleep(0) after cancel = %v", err)
	}
	if time.Since(start) > time.Second {
		t.Fatal("Sleep waited after cancel")
	}
}

func TestPoliciesAreSane(t *testing.T) {
	for name, p := range map[string]Policy{"Flush": Flush, "Object": Object, "Etcd": Etcd} {
		if p.BaseDelay <= 0 || p.MaxDelay < p.BaseDelay || p.MaxAttempts < 0 || p.AttemptTimeout < 0 {
			t.Errorf("%s = %+v", name, p)
		}
	}
}

func BenchmarkDoSuccess(b *testing.B) {
	b.ReportAllocs()
	ctx := context.Background()
	fn := func(context.Context) error { return nil }
	for b.Loop() {
		Do(ctx, Flush, fn)
	}
}
