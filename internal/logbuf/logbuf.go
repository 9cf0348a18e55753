// Package logbuf batches log lines into fewer write(2) calls, as nginx's
// access_log buffer= and flush= do: a line waits at most a short delay
// (or until the buffer fills) before it reaches the file, instead of
// costing one system call per request.
//
// Lines are kept whole and in order. Flush and Close write what is held;
// Handler wraps an slog.Handler so that warnings and errors are written at
// once, so only info and debug lines (the access log) ever wait. What a
// crash loses is at most the last delay's worth of access-log lines.
package logbuf

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Writer is an io.Writer that holds what is written to it for at most
// Delay, or until Size bytes are held, then writes it to the underlying
// writer in one call. It is safe for concurrent use. The zero value is not
// usable; use New.
type Writer struct {
	out   io.Writer
	delay time.Duration
	size  int

	wmu sync.Mutex // serialises writes to out, so batches stay in order

	mu     sync.Mutex // guards the fields below
	buf    []byte
	spare  []byte
	armed  bool
	closed bool
	timer  *time.Timer
}

// New returns a Writer over out that writes held bytes after delay or when
// size bytes are held, whichever comes first.
func New(out io.Writer, delay time.Duration, size int) *Writer {
	b := &Writer{out: out, delay: delay, size: size}
	b.timer = time.AfterFunc(time.Hour, func() { b.Flush() })
	b.timer.Stop()
	return b
}

// Write holds a copy of p. p should be whole lines (slog's handlers write
// one record per call). A p of size bytes or more, and any p after Close,
// is written through at once, after what is held.
func (b *Writer) Write(p []byte) (int, error) {
	if len(p) >= b.size {
		return b.writeThrough(p)
	}
	for {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return b.writeThrough(p)
		}
		if len(b.buf)+len(p) <= b.size {
			b.buf = append(b.buf, p...)
			if !b.armed {
				b.armed = true
				b.timer.Reset(b.delay)
			}
			b.mu.Unlock()
			return len(p), nil
		}
		b.mu.Unlock()
		// Full: write what is held, then try again (another writer
		// may have filled the buffer meanwhile).
		if err := b.Flush(); err != nil {
			return 0, err
		}
	}
}

// writeThrough writes what is held, then p, unbuffered.
func (b *Writer) writeThrough(p []byte) (int, error) {
	if err := b.Flush(); err != nil {
		return 0, err
	}
	b.wmu.Lock()
	defer b.wmu.Unlock()
	return b.out.Write(p)
}

// Flush writes everything held so far.
func (b *Writer) Flush() error {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.mu.Lock()
	out := b.buf
	b.buf = b.spare[:0]
	b.spare = nil
	if b.armed {
		b.armed = false
		b.timer.Stop()
	}
	b.mu.Unlock()
	if len(out) == 0 {
		b.giveBack(out)
		return nil
	}
	_, err := b.out.Write(out)
	b.giveBack(out)
	return err
}

// giveBack keeps a written batch's array for the next one, unless it grew
// past what a batch needs (one huge line).
func (b *Writer) giveBack(out []byte) {
	if cap(out) > 2*b.size {
		return
	}
	b.mu.Lock()
	if b.spare == nil {
		b.spare = out[:0]
	}
	b.mu.Unlock()
}

// Close writes what is held; later writes go through unbuffered, so a
// line logged during shutdown is never left behind. It does not close the
// underlying writer.
func (b *Writer) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return b.Flush()
}

// Handler wraps h, which writes to w, so that every record at level warn
// or above is written at once, together with the lines held before it.
func Handler(h slog.Handler, w *Writer) slog.Handler {
	return flushing{h, w}
}

type flushing struct {
	slog.Handler
	w *Writer
}

func (f flushing) Handle(ctx context.Context, r slog.Record) error {
	err := f.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		if ferr := f.w.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

func (f flushing) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushing{f.Handler.WithAttrs(attrs), f.w}
}

func (f flushing) WithGroup(name string) slog.Handler {
	return flushing{f.Handler.WithGroup(name), f.w}
}
