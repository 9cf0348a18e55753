package auth

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func openKeys(t testing.TB, path string) *KeyFile {
	t.Helper()
	k, err := OpenKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// keyLines returns the key lines of the file at path (comments and blank
// lines left out).
func keyLines(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for line := range strings.Lines(string(b)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			lines = append(lines, line)
		}
	}
	return lines
}

// keyID is the ID of the key that signed tok.
func keyID(tok string) string { return strings.Split(tok, ".")[1] }

// dirNames lists dir.
func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestKeyFileCreate(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "keys")
	a := openKeys(t, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("new key file mode %04o, want 0600", fi.Mode().Perm())
	}
	lines := keyLines(t, path)
	if len(lines) != 1 || !strings.HasSuffix(lines[0], " 0") {
		t.Fatalf("new key file holds %q, want one current key", lines)
	}
	before, _ := os.ReadFile(path)

	// A restart (or another node) loads the same key: what one signed,
	// the other verifies, under the same key ID.
	tok := sign(t, a.Ring(), Claims{Kind: Session, Subject: "u1", Expires: t0.Add(time.Hour)})
	b := openKeys(t, path)
	if _, err := b.Ring().Verify(tok, Session, t0); err != nil {
		t.Errorf("token of the first KeyFile on the reopened one: %v", err)
	}
	if again := sign(t, b.Ring(), Claims{Kind: Session, Subject: "u1", Expires: t0.Add(time.Hour)}); keyID(again) != keyID(tok) {
		t.Errorf("reopened file signs with key %s, the first with %s", keyID(again), keyID(tok))
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Errorf("reopening changed the file:\n%s\nto\n%s", before, after)
	}

	if _, err := OpenKeyFile(filepath.Join(t.TempDir(), "missing", "keys")); err == nil {
		t.Error("OpenKeyFile in a folder that does not exist succeeded")
	}
}

func TestKeyFileRefused(t *testing.T) {
	t.Parallel()
	good := base64.RawURLEncoding.EncodeToString(NewSecret())
	for _, tc := range []struct {
		name    string
		content string
		mode    os.FileMode
		want    []string // in the error
	}{
		{"readable by all", good + " 0\n", 0o644, []string{"read by others", "0644", "0600"}},
		{"readable by the group", good + " 0\n", 0o640, []string{"read by others", "0640", "0600"}},
		{"not base64", "# keys\n\n" + good + "!! 0\n", 0o600, []string{"line 3"}},
		{"no until", good + "\n", 0o600, []string{"line 1"}},
		{"until not a number", good + " 0\n" + good + " soon\n", 0o600, []string{"line 2"}},
		{"short secret", "# keys\n" + base64.RawURLEncoding.EncodeToString(make([]byte, 16)) + " 0\n", 0o600,
			[]string{"line 2", "32 bytes"}},
		{"no key", "# keys\n\n", 0o600, []string{"no key"}},
		{"empty", "", 0o600, []string{"no key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "keys")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil { // whatever the umask
				t.Fatal(err)
			}
			_, err := OpenKeyFile(path)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range append(tc.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			// Refused is not replaced: the keys there may be another
			// node's, and a new key would log everyone out.
			if b, _ := os.ReadFile(path); string(b) != tc.content {
				t.Errorf("refused file changed to %q", b)
			}
		})
	}
}

func TestKeyFileRotate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "keys")
	k := openKeys(t, path)
	c := Claims{Kind: Session, Subject: "u1", Expires: t0.Add(48 * time.Hour)}
	old := sign(t, k.Ring(), c)
	if err := k.Rotate(t0, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	fresh := sign(t, k.Ring(), c)
	if keyID(fresh) == keyID(old) {
		t.Fatal("after Rotate, tokens are signed by the old key")
	}
	// The rotating node and one that loads the file after it agree.
	for name, kf := range map[string]*KeyFile{"rotating": k, "reopened": openKeys(t, path)} {
		r := kf.Ring()
		if _, err := r.Verify(fresh, Session, t0); err != nil {
			t.Errorf("%s: new token: %v", name, err)
		}
		if _, err := r.Verify(old, Session, t0.Add(10*time.Minute-time.Second)); err != nil {
			t.Errorf("%s: old token within the overlap: %v", name, err)
		}
		if _, err := r.Verify(old, Session, t0.Add(10*time.Minute)); !errors.Is(err, ErrBadMAC) {
			t.Errorf("%s: old token once the overlap has passed: %v, want ErrBadMAC", name, err)
		}
		if _, err := r.Verify(fresh, Session, t0.Add(10*time.Minute)); err != nil {
			t.Errorf("%s: new token once the overlap has passed: %v", name, err)
		}
	}
	if lines := keyLines(t, path); len(lines) != 2 || !strings.HasSuffix(lines[0], " 0") {
		t.Errorf("key file after a rotation: %q, want the new key then the old", lines)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file after a rotation: %v, %v; want mode 0600", fi.Mode(), err)
	}
	// No temporary file is left; the lock file stays (removing a flock
	// file while another process may hold it is a race).
	if names := dirNames(t, dir); !slices.Equal(names, []string{"keys", "keys.lock"}) {
		t.Errorf("folder after a rotation holds %q", names)
	}
}

// TestKeyFileSharedReload: two nodes share one key file; after one
// rotates, the other signs and verifies with the new key within
// reloadEvery, without a restart.
func TestKeyFileSharedReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(dir, "keys")
		a, b := openKeys(t, path), openKeys(t, path)
		c := Claims{Kind: Session, Subject: "u1", Expires: time.Now().Add(48 * time.Hour)}
		old := sign(t, a.Ring(), c)
		held := b.Ring() // a caller keeping the ring sees reloads too
		if err := a.Rotate(time.Now(), time.Hour); err != nil {
			t.Fatal(err)
		}
		fresh := sign(t, a.Ring(), c)
		// b looked at the file less than reloadEvery ago: it has not
		// noticed yet (Ring does not stat the file on every request).
		if _, err := b.Ring().Verify(fresh, Session, time.Now()); err == nil {
			t.Fatal("b verified the new key before reloadEvery passed: this test no longer tests the reload")
		}
		time.Sleep(reloadEvery)
		now := time.Now()
		for _, tok := range []string{fresh, old} {
			if _, err := b.Ring().Verify(tok, Session, now); err != nil {
				t.Errorf("b, reloadEvery after a's rotation: %v", err)
			}
		}
		if _, err := held.Verify(fresh, Session, now); err != nil {
			t.Errorf("a ring taken from b before the reload: %v", err)
		}
		if byB := sign(t, b.Ring(), c); keyID(byB) != keyID(fresh) {
			t.Errorf("b signs with key %s, a with %s", keyID(byB), keyID(fresh))
		}
		// The old key's overlap came with the file.
		if _, err := b.Ring().Verify(old, Session, now.Add(time.Hour)); !errors.Is(err, ErrBadMAC) {
			t.Errorf("b, old token after the overlap: %v, want ErrBadMAC", err)
		}
	})
}

// TestKeyFileConcurrentRotate: two nodes rotating one file at once lose
// no rotation (the flock), readers always find a whole file, and no
// temporary file is left.
func TestKeyFileConcurrentRotate(t *testing.T) {
	t.Parallel()
	const perNode = 8
	dir := t.TempDir()
	path := filepath.Join(dir, "keys")
	nodes := []*KeyFile{openKeys(t, path), openKeys(t, path)}
	c := Claims{Kind: Link, Subject: "/stream/a", Expires: t0.Add(time.Hour)}

	done := make(chan struct{})
	readErr := make(chan error, 1)
	go func() { // a third node starting up during the rotations
		defer close(readErr)
		for range 1000 {
			select {
			case <-done:
				return
			default:
			}
			if _, err := OpenKeyFile(path); err != nil {
				readErr <- err
				return
			}
		}
	}()

	var wg sync.WaitGroup
	tokens := make([][]string, len(nodes))
	for i, k := range nodes {
		wg.Go(func() {
			for range perNode {
				if err := k.Rotate(t0, time.Hour); err != nil {
					t.Error(err)
					return
				}
				tok, err := k.Ring().Sign(c)
				if err != nil {
					t.Error(err)
					return
				}
				tokens[i] = append(tokens[i], tok)
			}
		})
	}
	wg.Wait()
	close(done)
	if err := <-readErr; err != nil {
		t.Errorf("opening the key file during rotations: %v", err)
	}

	// Every replaced key is still within its overlap: the file holds them
	// all, and every node's tokens verify on a node started afterwards.
	if lines := keyLines(t, path); len(lines) != 1+len(nodes)*perNode {
		t.Errorf("key file holds %d keys after %d rotations, want %d: a rotation was lost",
			len(lines), len(nodes)*perNode, 1+len(nodes)*perNode)
	}
	r := openKeys(t, path).Ring()
	for i, toks := range tokens {
		for j, tok := range toks {
			if _, err := r.Verify(tok, Link, t0.Add(time.Minute)); err != nil {
				t.Errorf("node %d, token after rotation %d: %v", i, j, err)
			}
		}
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"keys", "keys.lock"}) {
		t.Errorf("folder after the rotations holds %q", names)
	}
}
