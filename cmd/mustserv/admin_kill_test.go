package main

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"mustserv/internal/config"
)

// TestAdminSavesSurviveKill is issue 6's acceptance point 5 through the
// real server: an admin (by API key) saves the pacing page again and
// again while the server is killed with SIGKILL at random moments, 100
// times. After each kill the configuration file parses and holds either
// the last save that was answered or the one in flight.
func TestAdminSavesSurviveKill(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	data := t.TempDir()
	if _, _, err := runCmd(t, "user", "add", "root", "--role", "admin", "--data", data, "--password-file", passwordFile(t, "root password")); err != nil {
		t.Fatal(err)
	}
	key, _, err := runCmd(t, "user", "key", "add", "root", "saver", "--data", data)
	if err != nil {
		t.Fatal(err)
	}
	key = strings.TrimSpace(key)
	noteSecret(key)
	file := filepath.Join(data, configFile)
	const rounds = 100
	deadline := time.Now().Add(90 * time.Second)
	answered := 0 // the last save answered 303; 0: none yet
	var inflightLanded, lastKept int
	next := 1
	for round := range rounds {
		if time.Now().After(deadline) {
			t.Fatalf("only %d rounds in 90 s", round)
		}
		p := startProc(t, bin, "serve", "--data", data, "--listen", "127.0.0.1:0")
		var sending, done atomic.Int64 // uplink of the save in flight / last answered
		done.Store(int64(answered))
		stop := make(chan struct{})
		finished := make(chan struct{})
		go func() {
			defer close(finished)
			client := noRedirect
			for n := next; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				sending.Store(int64(n))
				req, _ := http.NewRequest(http.MethodPost, p.URL+"/admin/pacing", strings.NewReader(pacingForm(fmt.Sprintf("%dMbit", 100+n)).Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Authorization", "Bearer "+key)
				resp, err := client.Do(req)
				if err != nil {
					return // killed
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusSeeOther {
					t.Errorf("save %d: %d", n, resp.StatusCode)
					return
				}
				done.Store(int64(n))
			}
		}()
		// Let 0 to 2 saves finish, then kill at a random moment.
		want := done.Load() + rand.Int64N(3)
		for until := time.Now().Add(5 * time.Second); done.Load() < want && time.Now().Before(until); {
			runtime.Gosched()
		}
		spin := time.Duration(rand.Int64N(int64(3 * time.Millisecond)))
		for start := time.Now(); time.Since(start) < spin; {
		}
		p.Cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		close(stop)
		<-finished
		last, inflight := int(done.Load()), int(sending.Load())
		c, err := config.Load(file)
		if last == 0 && inflight == 0 {
			continue
		}
		if err != nil {
			if last == 0 {
				continue // no save answered yet and the first one killed before it wrote the file
			}
			t.Fatalf("round %d: the file does not load after a kill: %v", round, err)
		}
		got := int(c.Pace.Uplink/1_000_000) - 100 // save n wrote 100+n Mbit
		switch got {
		case inflight:
			inflightLanded++
		case last:
			lastKept++
		default:
			t.Fatalf("round %d: file has uplink %d Mbit; the last save answered was %d, the one in flight %d", round, got, last, inflight)
		}
		answered, next = got, inflight+1
	}
	t.Logf("%d kills: the save in flight had landed in %d, the last answered one was kept in %d; %d saves in all",
		rounds, inflightLanded, lastKept, next-1)
	if next-1 < rounds {
		t.Errorf("only %d saves in %d rounds", next-1, rounds)
	}
}
