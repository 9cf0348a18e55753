package cover

import (
	"container/list"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// disk keeps thumbnails as files named by their keys, at most max bytes of
// them, evicting the least recently used. Recency is kept in memory and in
// the files' modification times (a hit touches its file), from which the
// list is rebuilt when a new process first uses the folder.
//
// A nil *disk keeps nothing.
type disk struct {
	dir string
	max int64
	log *slog.Logger

	load sync.Once
	ok   bool // the folder is usable; set by load

	mu    sync.Mutex
	lru   list.List // of *entry, most recently used first
	byKey map[string]*list.Element
	total int64 // bytes of the files listed
}

type entry struct {
	key  string
	size int64
}

const (
	thumbExt   = ".jpg"
	tempPrefix = ".tmp-"
)

func newDisk(dir string, max int64, log *slog.Logger) *disk {
	return &disk{dir: dir, max: max, log: log, byKey: make(map[string]*list.Element)}
}

// get returns the thumbnail stored under key, if any.
func (d *disk) get(key string) ([]byte, bool) {
	if d == nil || !d.ready() {
		return nil, false
	}
	d.mu.Lock()
	el, ok := d.byKey[key]
	if ok {
		d.lru.MoveToFront(el)
	}
	d.mu.Unlock()
	if !ok {
		return nil, false
	}
	name := d.path(key)
	b, err := os.ReadFile(name)
	if err != nil {
		// Evicted since we looked, or removed by hand: make it again.
		d.mu.Lock()
		if d.byKey[key] == el {
			d.removeLocked(el)
		}
		d.mu.Unlock()
		if !errors.Is(err, fs.ErrNotExist) {
			d.log.Warn("cover cache read failed", "err", err)
		}
		return nil, false
	}
	now := time.Now()
	os.Chtimes(name, now, now) // best effort: only the order after a restart depends on it
	return b, true
}

// put stores a thumbnail under key, written whole or not at all, and
// evicts the least recently used ones beyond the bound. Failures are
// logged: the caller has its thumbnail anyway.
func (d *disk) put(key string, b []byte) {
	if d == nil || !d.ready() {
		return
	}
	if err := d.write(key, b); err != nil {
		d.log.Warn("cover cache write failed", "err", err)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if el, ok := d.byKey[key]; ok {
		d.removeLocked(el) // rewritten: count the new size
	}
	d.byKey[key] = d.lru.PushFront(&entry{key, int64(len(b))})
	d.total += int64(len(b))
	d.evictLocked()
}

// write writes the file through a temporary one and a rename, synced
// first, so that neither a crash nor a concurrent reader ever sees part of
// a thumbnail under its key.
func (d *disk) write(key string, b []byte) error {
	f, err := os.CreateTemp(d.dir, tempPrefix+"*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	err = errors.Join(err, f.Sync(), f.Close())
	if err == nil {
		err = os.Rename(f.Name(), d.path(key))
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", d.path(key), err)
	}
	return nil
}

func (d *disk) evictLocked() {
	for d.total > d.max && d.lru.Len() > 0 {
		el := d.lru.Back()
		if err := os.Remove(d.path(el.Value.(*entry).key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			d.log.Warn("cover cache eviction failed", "err", err)
		}
		d.removeLocked(el)
	}
}

func (d *disk) removeLocked(el *list.Element) {
	e := d.lru.Remove(el).(*entry)
	delete(d.byKey, e.key)
	d.total -= e.size
}

func (d *disk) path(key string) string { return filepath.Join(d.dir, key+thumbExt) }

// ready lists the folder's thumbnails the first time the cache is used,
// oldest first by modification time, and removes temporary files a crash
// left. A folder that cannot be created or read is logged once and the
// cache then keeps nothing.
func (d *disk) ready() bool {
	d.load.Do(func() {
		if err := d.scan(); err != nil {
			d.log.Warn("cover cache disabled", "err", err)
			return
		}
		d.ok = true
	})
	return d.ok
}

func (d *disk) scan() error {
	if err := os.MkdirAll(d.dir, 0o750); err != nil {
		return err
	}
	des, err := os.ReadDir(d.dir)
	if err != nil {
		return err
	}
	type found struct {
		entry
		mtime time.Time
	}
	var files []found
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, tempPrefix) {
			os.Remove(filepath.Join(d.dir, name))
			continue
		}
		key, ok := strings.CutSuffix(name, thumbExt)
		if !ok || !isKey(key) || !de.Type().IsRegular() {
			continue // not ours: neither counted nor removed
		}
		fi, err := de.Info()
		if err != nil {
			continue
		}
		files = append(files, found{entry{key, fi.Size()}, fi.ModTime()})
	}
	slices.SortFunc(files, func(a, b found) int { return a.mtime.Compare(b.mtime) })
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, f := range files {
		d.byKey[f.key] = d.lru.PushFront(&entry{f.key, f.size})
		d.total += f.size
	}
	d.evictLocked() // the bound may have been lowered since
	return nil
}

func isKey(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}
