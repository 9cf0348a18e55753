package auth

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// KeyFile is a Keyring kept in a file, so that it survives restarts and
// so that several nodes pointing at one shared file sign and verify alike.
// A node notices a rotation made by another within reloadEvery.
//
// The file has one key per line, the current first: the secret in
// URL-safe base64, then the Unix time until which a replaced key still
// verifies (0 for the current key). It is never readable by others.
type KeyFile struct {
	path string

	ring  *Keyring // set once by OpenKeyFile; its keys change under its own lock
	check throttle // when stamp was last compared with the file

	mu    sync.Mutex // loads and rotations
	stamp fileStamp  // of the file ring was loaded from
}

// reloadEvery is how often Ring looks for a rotation by another node.
const reloadEvery = time.Second

type fileStamp struct {
	mtime time.Time
	size  int64
	ino   uint64
}

func stampOf(fi fs.FileInfo) fileStamp {
	st := fileStamp{mtime: fi.ModTime(), size: fi.Size()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st
}

// OpenKeyFile loads the keys at path, creating the file with a new
// secret if there is none. A file that others may read is refused: whoever
// reads it can sign in as anyone.
func OpenKeyFile(path string) (*KeyFile, error) {
	k := &KeyFile{path: path}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		werr := writeKeys(f, []key{mustKey(NewSecret())})
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			os.Remove(path)
			return nil, fmt.Errorf("key file %s: %w", path, werr)
		}
	case !errors.Is(err, fs.ErrExist):
		return nil, fmt.Errorf("key file: %w", err)
	}
	if err := k.load(); err != nil {
		return nil, err
	}
	return k, nil
}

func mustKey(secret []byte) key {
	k, err := newKey(secret)
	if err != nil {
		panic(err) // NewSecret's size is SecretSize
	}
	return k
}

// load reads the file into k.ring. The caller holds k.mu or owns k.
func (k *KeyFile) load() error {
	f, err := os.Open(k.path)
	if err != nil {
		return fmt.Errorf("key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("key file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("key file %s may be read by others (mode %04o): make it 0600", k.path, fi.Mode().Perm())
	}
	keys, err := readKeys(f)
	if err != nil {
		return fmt.Errorf("key file %s: %w", k.path, err)
	}
	if k.ring == nil {
		k.ring = &Keyring{}
	}
	k.ring.mu.Lock()
	k.ring.keys = keys
	k.ring.mu.Unlock()
	k.stamp = stampOf(fi)
	k.check.done(time.Now())
	return nil
}

func readKeys(f *os.File) ([]key, error) {
	var keys []key
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		enc, untilText, ok := strings.Cut(line, " ")
		secret, err := base64.RawURLEncoding.DecodeString(enc)
		until, uerr := strconv.ParseInt(strings.TrimSpace(untilText), 10, 64)
		if !ok || err != nil || uerr != nil {
			return nil, fmt.Errorf("line %d: want \"<secret> <until>\"", n)
		}
		kk, err := newKey(secret)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if len(keys) > 0 {
			kk.until = time.Unix(until, 0)
		}
		keys = append(keys, kk)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errors.New("no key")
	}
	return keys, nil
}

func writeKeys(f *os.File, keys []key) error {
	var b bytes.Buffer
	b.WriteString("# MuStServ signing keys: the current first, then replaced keys and until when they verify.\n")
	b.WriteString("# Whoever reads this file can sign in as anyone: keep it 0600.\n")
	for i, kk := range keys {
		until := int64(0)
		if i > 0 {
			// Rounded up: a node reading the file must not end the
			// overlap before the node that rotated does.
			until = kk.until.Add(time.Second - 1).Unix()
		}
		fmt.Fprintf(&b, "%s %d\n", base64.RawURLEncoding.EncodeToString(kk.secret), until)
	}
	if _, err := f.Write(b.Bytes()); err != nil {
		return err
	}
	return f.Sync()
}

// Ring returns the keyring, first loading the file again if another node
// rotated it (looked at no more than once per reloadEvery). A file that
// has become unreadable leaves the last keys in use.
func (k *KeyFile) Ring() *Keyring {
	if k.check.due(time.Now(), reloadEvery) {
		k.mu.Lock()
		if fi, err := os.Stat(k.path); err == nil && stampOf(fi) != k.stamp {
			k.load() // on error the old keys stay
		}
		k.mu.Unlock()
	}
	return k.ring
}

// Rotate makes a new current key; the replaced one verifies until
// now+overlap. The file is replaced atomically, under a lock that other
// processes rotating the same file respect.
func (k *KeyFile) Rotate(now time.Time, overlap time.Duration) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	lock, err := os.OpenFile(k.path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("rotate keys: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("rotate keys: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if err := k.load(); err != nil { // another node may have rotated
		return err
	}
	if err := k.ring.Rotate(NewSecret(), now, overlap); err != nil {
		return err
	}
	k.ring.mu.RLock()
	keys := append([]key(nil), k.ring.keys...)
	k.ring.mu.RUnlock()
	tmp, err := os.CreateTemp(filepath.Dir(k.path), ".keys-*")
	if err != nil {
		return fmt.Errorf("rotate keys: %w", err)
	}
	defer os.Remove(tmp.Name())
	werr := writeKeys(tmp, keys)
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), k.path)
	}
	if werr != nil {
		k.load() // back to what the file holds
		return fmt.Errorf("rotate keys: %w", werr)
	}
	if d, err := os.Open(filepath.Dir(k.path)); err == nil {
		d.Sync()
		d.Close()
	}
	if fi, err := os.Stat(k.path); err == nil {
		k.stamp = stampOf(fi)
	}
	return nil
}
