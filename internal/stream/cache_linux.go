package stream

import (
	"io/fs"
	"syscall"
)

// idOf returns fi's identity; ok is false when fi does not come from a
// stat(2) (then the file is not cached: a change could go unseen).
func idOf(fi fs.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{
		dev:     uint64(st.Dev),
		ino:     st.Ino,
		size:    st.Size,
		mtimeNs: fi.ModTime().UnixNano(),
		ctimeNs: st.Ctim.Nano(),
	}, true
}

// setCork sets or clears TCP_CORK on the socket behind rc.
func setCork(rc syscall.RawConn, on bool) error {
	v := 0
	if on {
		v = 1
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK, v)
	}); err != nil {
		return err
	}
	return serr
}
