package storage

import "sync/atomic"

// Counters count what remote files read, for metrics and benchmarks
// (bytes fetched per probed file). The zero value is ready; a nil
// *Counters counts nothing. Safe for concurrent use.
type Counters struct {
	fetches       atomic.Int64
	fetchedBytes  atomic.Int64
	retries       atomic.Int64
	cacheHitBytes atomic.Int64
}

// Counts is a snapshot of Counters.
type Counts struct {
	// Fetches is the number of requests made to the storage (calls of a
	// FetchFunc), retries included.
	Fetches int64
	// FetchedBytes is the number of bytes read from the storage's
	// answers.
	FetchedBytes int64
	// Retries is the number of fetches that repeated a failed one.
	Retries int64
	// CacheHitBytes is the number of bytes read from the on-disk cache
	// instead of the storage.
	CacheHitBytes int64
}

// Counts returns the counts so far.
func (c *Counters) Counts() Counts {
	if c == nil {
		return Counts{}
	}
	return Counts{
		Fetches:       c.fetches.Load(),
		FetchedBytes:  c.fetchedBytes.Load(),
		Retries:       c.retries.Load(),
		CacheHitBytes: c.cacheHitBytes.Load(),
	}
}

func (c *Counters) addFetch() {
	if c != nil {
		c.fetches.Add(1)
	}
}

func (c *Counters) addFetched(n int) {
	if c != nil {
		c.fetchedBytes.Add(int64(n))
	}
}

func (c *Counters) addRetry() {
	if c != nil {
		c.retries.Add(1)
	}
}

func (c *Counters) addCacheHit(n int) {
	if c != nil {
		c.cacheHitBytes.Add(int64(n))
	}
}
