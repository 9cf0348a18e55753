package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"syscall"
)

// clkTck is USER_HZ, the unit of the times in /proc/self/stat. It is 100
// on every Linux architecture Go supports (sysconf(_SC_CLK_TCK) returns
// this constant; the kernel's own HZ does not leak through /proc).
const clkTck = 100

// registerOS registers the process_* metrics, read from /proc/self at
// each exposition. Each is registered only if its source reads now.
func registerOS(r *Registry) {
	pageSize := float64(os.Getpagesize())
	if st, err := readStat(); err == nil {
		r.GaugeFunc("process_resident_memory_bytes", "Resident memory size in bytes.", func() float64 {
			st, err := readStat()
			if err != nil {
				return math.NaN()
			}
			return float64(st.rss) * pageSize
		})
		r.GaugeFunc("process_virtual_memory_bytes", "Virtual memory size in bytes.", func() float64 {
			st, err := readStat()
			if err != nil {
				return math.NaN()
			}
			return float64(st.vsize)
		})
		r.CounterFunc("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", func() float64 {
			st, err := readStat()
			if err != nil {
				return math.NaN()
			}
			return float64(st.utime+st.stime) / clkTck
		})
		// The start time does not change: work it out once.
		if boot, err := bootTime(); err == nil {
			start := float64(boot) + float64(st.starttime)/clkTck
			r.GaugeFunc("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", func() float64 {
				return start
			})
		}
	}
	if _, err := openFDs(); err == nil {
		r.GaugeFunc("process_open_fds", "Number of open file descriptors.", func() float64 {
			n, err := openFDs()
			if err != nil {
				return math.NaN()
			}
			return float64(n)
		})
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil {
		r.GaugeFunc("process_max_fds", "Maximum number of open file descriptors.", func() float64 {
			var rl syscall.Rlimit
			if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
				return math.NaN()
			}
			return float64(rl.Cur)
		})
	}
}

// stat is the part of /proc/self/stat used here (proc_pid_stat(5)).
type stat struct {
	utime, stime uint64 // clock ticks
	starttime    uint64 // clock ticks after boot
	vsize        uint64 // bytes
	rss          uint64 // pages
}

func readStat() (stat, error) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return stat{}, err
	}
	return parseStat(b)
}

// parseStat parses the contents of /proc/<pid>/stat. The second field, the
// command name in parentheses, may itself hold spaces and parentheses, so
// the fields are counted from the last ')'.
func parseStat(b []byte) (stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, errors.New("parse /proc/self/stat: no ')' after the command name")
	}
	// fields[0] is field 3 (state) of proc_pid_stat(5).
	fields := bytes.Fields(b[i+1:])
	const (
		utime     = 14 - 3
		stime     = 15 - 3
		starttime = 22 - 3
		vsize     = 23 - 3
		rss       = 24 - 3
	)
	if len(fields) <= rss {
		return stat{}, fmt.Errorf("parse /proc/self/stat: %d fields after the command name, want at least %d", len(fields), rss+1)
	}
	var st stat
	for _, f := range []struct {
		i   int
		dst *uint64
	}{{utime, &st.utime}, {stime, &st.stime}, {starttime, &st.starttime}, {vsize, &st.vsize}, {rss, &st.rss}} {
		v, err := strconv.ParseUint(string(fields[f.i]), 10, 64)
		if err != nil {
			return stat{}, fmt.Errorf("parse /proc/self/stat field %d: %w", f.i+3, err)
		}
		*f.dst = v
	}
	return st, nil
}

// bootTime returns the btime line of /proc/stat: when the system booted,
// in seconds since the Unix epoch.
func bootTime() (uint64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseBootTime(b)
}

func parseBootTime(b []byte) (uint64, error) {
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse /proc/stat btime: %w", err)
			}
			return n, nil
		}
	}
	return 0, errors.New("parse /proc/stat: no btime line")
}

// openFDs counts the entries of /proc/self/fd, less the one this count
// has open to read the directory.
func openFDs() (int, error) {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	defer d.Close()
	n := 0
	for {
		names, err := d.Readdirnames(256)
		n += len(names)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return n - 1, nil
			}
			return 0, fmt.Errorf("read /proc/self/fd: %w", err)
		}
	}
}
