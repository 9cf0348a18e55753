package logbuf

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// sink records each Write call it gets and signals after each.
type sink struct {
	mu     sync.Mutex
	writes []string
	wrote  chan struct{}
}

func newSink() *sink { return &sink{wrote: make(chan struct{}, 1000)} }

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.writes = append(s.writes, string(p))
	s.mu.Unlock()
	select {
	case s.wrote <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (s *sink) text() (string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.writes, ""), len(s.writes)
}

func TestHeldUntilDelay(t *testing.T) {
	s := newSink()
	w := New(s, 20*time.Millisecond, 1<<10)
	defer w.Close()
	start := time.Now()
	fmt.Fprintln(w, "one")
	fmt.Fprintln(w, "two")
	if text, _ := s.text(); text != "" {
		t.Fatalf("written at once: %q", text)
	}
	select {
	case <-s.wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("held lines never written")
	}
	if took := time.Since(start); took < 20*time.Millisecond {
		t.Errorf("written after %v, before the 20ms delay", took)
	}
	text, n := s.text()
	if text != "one\ntwo\n" || n != 1 {
		t.Errorf("got %d writes %q, want one write of both lines", n, text)
	}
}

func TestFullBufferWritesAtOnce(t *testing.T) {
	s := newSink()
	w := New(s, time.Hour, 100)
	line := strings.Repeat("x", 39) + "\n" // 40 bytes
	for range 5 {
		w.Write([]byte(line))
	}
	// 5 × 40 = 200 bytes through a 100-byte buffer: the third and fifth
	// lines did not fit, so two batches of two lines are out; one is held.
	text, n := s.text()
	if n != 2 || text != strings.Repeat(line, 4) {
		t.Fatalf("got %d writes of %d bytes, want 2 writes of 160 bytes", n, len(text))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if text, n = s.text(); n != 3 || text != strings.Repeat(line, 5) {
		t.Fatalf("after Close: %d writes of %d bytes, want 3 of 200", n, len(text))
	}
}

func TestLargeLineAndWritesAfterClose(t *testing.T) {
	s := newSink()
	w := New(s, time.Hour, 16)
	w.Write([]byte("held\n"))
	big := strings.Repeat("y", 40) + "\n"
	w.Write([]byte(big))
	if text, _ := s.text(); text != "held\n"+big {
		t.Fatalf("a line larger than the buffer: got %q, want it after the held line", text)
	}
	w.Close()
	w.Write([]byte("late\n"))
	if text, _ := s.text(); !strings.HasSuffix(text, "late\n") {
		t.Fatalf("a line after Close was held: %q", text)
	}
}

func TestHandlerFlushesWarnings(t *testing.T) {
	s := newSink()
	w := New(s, time.Hour, 1<<16)
	defer w.Close()
	log := slog.New(Handler(slog.NewTextHandler(w, nil), w)).With("node", "a")
	log.Info("request", "n", 1)
	if text, _ := s.text(); text != "" {
		t.Fatalf("info written at once: %q", text)
	}
	log.Warn("disk full")
	text, _ := s.text()
	i, j := strings.Index(text, "msg=request"), strings.Index(text, `msg="disk full"`)
	if i < 0 || j < i || !strings.Contains(text[j:], "node=a") {
		t.Fatalf("a warning must be written at once after the held lines; got %q", text)
	}
}

// TestConcurrentWriters runs with -race: every line arrives whole, once,
// and in the order each goroutine wrote its own lines.
func TestConcurrentWriters(t *testing.T) {
	var out bytes.Buffer
	var mu sync.Mutex
	w := New(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return out.Write(p)
	}), time.Millisecond, 512)
	const writers, lines = 8, 500
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range lines {
				fmt.Fprintf(w, "g%d line %04d %s\n", g, i, strings.Repeat("z", i%50))
			}
		})
	}
	wg.Wait()
	w.Close()
	next := make([]int, writers)
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(got) != writers*lines {
		t.Fatalf("got %d lines, want %d", len(got), writers*lines)
	}
	for _, l := range got {
		var g, i int
		var pad string
		if _, err := fmt.Sscanf(l, "g%d line %d %s", &g, &i, &pad); err != nil && i%50 != 0 {
			t.Fatalf("torn line %q: %v", l, err)
		}
		if g < 0 || g >= writers || i != next[g] || len(pad) != i%50 {
			t.Fatalf("line %q out of order or torn (want g%d line %d)", l, g, next[g])
		}
		next[g]++
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestCloseWhileWriting runs with -race: lines written while another
// goroutine closes the writer all arrive, none left held after Close.
func TestCloseWhileWriting(t *testing.T) {
	for range 50 {
		s := newSink()
		w := New(s, time.Hour, 64)
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := range 20 {
					fmt.Fprintf(w, "g%d %02d\n", g, i)
				}
			})
		}
		wg.Go(func() { w.Close() })
		wg.Wait()
		// No Flush here: after Close nothing may be held.
		text, _ := s.text()
		if n := strings.Count(text, "\n"); n != 80 {
			t.Fatalf("%d of 80 lines written", n)
		}
	}
}
