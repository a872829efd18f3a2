// Package retry is Strata's one retry loop: a Policy (base and maximum delay,
// optional attempt bound and per-attempt timeout) with full-jitter
// exponential backoff, Do to run an operation under it, and Sleep to wait
// for a delay or the end of a ctx.
//
// The delay before retry n (n >= 1) is uniform in
// [0, min(MaxDelay, BaseDelay·2^(n-1))] ("full jitter"): nodes that failed
// together spread their retries over the whole window instead of retrying
// in step, and the expected wait is half the ceiling.
//
// Do stops at the first of: success; an error marked Permanent or refused
// by the Retryable predicate; MaxAttempts failed attempts (the error then
// wraps ErrExhausted and the last failure); the end of ctx (the error then
// wraps ctx.Err(), with the last failure in its message, so callers test
// for cancellation with errors.Is). An attempt that overran
// Policy.AttemptTimeout is retried whatever the predicate says: the store
// hung, it did not refuse.
//
// Loops that are not "retry until it works" (a watch that is restarted for
// ever, a periodic keep-alive) use Policy.Backoff and Sleep directly.
//
// The policies of Strata's call sites are defined together in policies.go,
// so they are tuned in one place.
//
// The package imports nothing from Strata, so every package (metadata,
// tier, tier/objstore) can use it.
package retry
