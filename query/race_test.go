//go:build race

package query

// raceEnabled: the race detector is on. It makes sync.Pool drop and miss
// items at random, so heap measurements vary by megabytes from run to run.
const raceEnabled = true
