package retry

import "time"

// The tuning of every Strata call site, in one place. Delays are full
// jitter (see Policy.Backoff), so a MaxDelay is a ceiling, not a wait: the
// mean sleep at the cap is MaxDelay/2.
var (
	// Flush is the flusher's retry of an object PUT and an etcd commit. It
	// has no attempt bound: a flush that gives up fails the appends of every
	// partition in it and closes those partitions, so the flusher keeps
	// trying until its ctx (Close's deadline) ends. The first retries are
	// quick (10ms) because the object-store client below already retried
	// (Object) and a commit conflict or etcd leader change usually clears at
	// once; the 2s cap keeps a recovering store from waiting long for a
	// flush that producers are blocked on.
	Flush = Policy{BaseDelay: 10 * time.Millisecond, MaxDelay: 2 * time.Second}

	// Object is a remote object store request (tier/objstore: S3). Its
	// fields are objstore's documented defaults (objstore.DefaultMaxAttempts
	// etc., configurable per bucket with objstore.RetryConfig; a test keeps
	// the two equal). Eight attempts 100ms..5s ride out a SlowDown burst or
	// a store failover of a few seconds, then the caller (which may have
	// its own retry, as Flush does) hears about it; the 2m attempt timeout
	// is long enough for a large object on a slow link and turns a
	// connection a store accepted and then left hanging into a retry
	// instead of a stuck call.
	Object = Policy{MaxAttempts: 8, BaseDelay: 100 * time.Millisecond, MaxDelay: 5 * time.Second, AttemptTimeout: 2 * time.Minute}

	// Etcd is the metadata store's background loops: restarting a watch,
	// granting a new lease after losing one, and retrying a failed lease
	// keep-alive (there capped again by the keep-alive interval). No attempt
	// bound: these loops run for the life of the Store. 50ms first because
	// etcd usually answers again after one leader election; the 5s cap
	// bounds how stale the cache can be after etcd returns (a watch
	// restarts at most 5s late) while a whole cluster's nodes reconnecting
	// spread over it.
	Etcd = Policy{BaseDelay: 50 * time.Millisecond, MaxDelay: 5 * time.Second}
)
