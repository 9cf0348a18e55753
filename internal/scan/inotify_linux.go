package scan

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// notifier is a minimal inotify watcher: one watch per folder, remembered
// only as watch descriptor → library and folder (about 80 bytes a folder;
// fsnotify keeps absolute paths both ways and more: 4 MB for 10,000
// folders, a sixth of an idle server). Adding a folder that is watched
// already returns the same descriptor, so no reverse map is needed; a
// folder that moves or disappears loses its watch and those below it.
type notifier struct {
	f  *os.File
	fd int // f's descriptor, kept: f.Fd() could make f blocking

	mu     sync.Mutex
	closed bool
	dirs   map[int32]dirKey
}

// event is a change in a watched folder (to one of its entries).
type event struct {
	dir dirKey
}

// errOverflow reports that the kernel dropped events.
var errOverflow = errors.New("inotify queue overflow: events were lost")

// watchMask is what a folder reports: entries created, deleted, moved in
// or out, written, their times or modes changed; and the folder's own end.
const watchMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
	unix.IN_CLOSE_WRITE | unix.IN_MODIFY | unix.IN_ATTRIB | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR

func newNotifier() (*notifier, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	// Non-blocking and wrapped in an os.File, reads go through the
	// runtime's poller and Close interrupts them.
	return &notifier{f: os.NewFile(uintptr(fd), "inotify"), fd: fd, dirs: map[int32]dirKey{}}, nil
}

// add watches the folder at path on disk, which is k (again: then only its
// key is updated, as after a rename).
func (n *notifier) add(path string, k dirKey) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return os.ErrClosed
	}
	wd, err := unix.InotifyAddWatch(n.fd, path, watchMask)
	if err != nil {
		return err
	}
	if n.dirs[int32(wd)] != k {
		n.dirs[int32(wd)] = k
	}
	return nil
}

// len is the number of folders watched.
func (n *notifier) len() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.dirs)
}

func (n *notifier) close() error {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	return n.f.Close()
}

// dropBelow forgets a folder's watch and those below it (the kernel keeps
// watching a moved folder, under a path we no longer know).
func (n *notifier) dropBelow(wd int32, k dirKey) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for w, d := range n.dirs {
		if w == wd || (d.library == k.library && (k.dir == "" || strings.HasPrefix(d.dir, k.dir+"/"))) {
			if !n.closed {
				unix.InotifyRmWatch(n.fd, uint32(w)) // may be gone already
			}
			delete(n.dirs, w)
		}
	}
}

// dropLibrary forgets every watch of a library (removed, or moved to
// another folder). Events already read are the pass's to discard.
func (n *notifier) dropLibrary(library string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for w, d := range n.dirs {
		if d.library == library {
			if !n.closed {
				unix.InotifyRmWatch(n.fd, uint32(w)) // may be gone already
			}
			delete(n.dirs, w)
		}
	}
}

// read delivers events to emit until the notifier is closed; errOverflow
// and read errors go to fail.
func (n *notifier) read(emit func(event), fail func(error)) {
	buf := make([]byte, 64<<10)
	for {
		m, err := n.f.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				fail(err)
			}
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= m; {
			raw := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := ""
			if raw.Len > 0 {
				b := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(raw.Len)]
				if i := indexNUL(b); i >= 0 {
					b = b[:i]
				}
				name = string(b)
			}
			off += unix.SizeofInotifyEvent + int(raw.Len)
			n.handle(raw.Wd, raw.Mask, name, emit, fail)
		}
	}
}

func (n *notifier) handle(wd int32, mask uint32, name string, emit func(event), fail func(error)) {
	if mask&unix.IN_Q_OVERFLOW != 0 {
		fail(errOverflow)
		return
	}
	n.mu.Lock()
	k, ok := n.dirs[wd]
	n.mu.Unlock()
	if !ok {
		return
	}
	switch {
	case mask&unix.IN_IGNORED != 0:
		// The watch is gone (folder deleted, or removed by us).
		n.mu.Lock()
		delete(n.dirs, wd)
		n.mu.Unlock()
	case mask&unix.IN_MOVE_SELF != 0:
		n.dropBelow(wd, k)
	case mask&unix.IN_DELETE_SELF != 0:
		// IN_IGNORED follows; the parent reports the deletion.
	case name != "":
		emit(event{dir: k})
	}
}

func indexNUL(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return -1
}
