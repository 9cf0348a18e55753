package cover

import (
	"context"
	"sync"
)

// flight runs one piece of work per key at a time: callers asking for a key
// already in flight wait for its result instead of doing it again.
//
// Unlike x/sync/singleflight, the work runs under its own context, which
// is cancelled once every caller waiting for it has gone: one caller
// hanging up does not fail the others, and a flood of abandoned requests
// does not leave work queued behind the decode tokens.
type flight struct {
	mu    sync.Mutex
	calls map[string]*call
}

type call struct {
	done    chan struct{} // closed when val and err are set
	val     []byte
	err     error
	waiters int
	cancel  context.CancelFunc
}

// do returns fn's result for key, running fn unless a call for key is
// already in flight. It returns ctx's error if ctx ends first.
func (g *flight) do(ctx context.Context, key string, fn func(context.Context) ([]byte, error)) ([]byte, error) {
	g.mu.Lock()
	c, ok := g.calls[key]
	if !ok {
		if g.calls == nil {
			g.calls = make(map[string]*call)
		}
		// WithoutCancel keeps ctx's values (trace IDs) but not its end.
		wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		c = &call{done: make(chan struct{}), cancel: cancel}
		g.calls[key] = c
		go func() {
			c.val, c.err = fn(wctx)
			cancel()
			g.forget(key, c)
			close(c.done)
		}()
	}
	c.waiters++
	g.mu.Unlock()

	select {
	case <-c.done:
		return c.val, c.err
	case <-ctx.Done():
		g.mu.Lock()
		c.waiters--
		if c.waiters == 0 {
			c.cancel()
			// A caller coming now must start afresh, not join work
			// that is being cancelled.
			if g.calls[key] == c {
				delete(g.calls, key)
			}
		}
		g.mu.Unlock()
		return nil, ctx.Err()
	}
}

func (g *flight) forget(key string, c *call) {
	g.mu.Lock()
	if g.calls[key] == c {
		delete(g.calls, key)
	}
	g.mu.Unlock()
}
