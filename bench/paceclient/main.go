// Command paceclient is bench/pace-cost.sh's load client: a lean stand-in
// for many players that opens N HTTP/1.1 connections to one URL, reads every
// body as fast as it arrives and measures, over a fixed window after every
// stream is past its burst, the delivered rate of each stream and the
// server's CPU time and RSS (read from /proc for the pids given).
//
// One goroutine and one read buffer per connection, no net/http: at 10,000
// connections it must stay well under one core (mustload, which models each
// player's buffer, is the tool for what a viewer sees).
//
// It prints one line "RESULT key=value ..." that pace-cost.sh parses, and a
// few human lines before it on stderr. Once the window is over it creates
// the file -ready (if given), keeps the streams open for -hold (for strace)
// and then closes them.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var (
	addr     = flag.String("addr", "127.0.0.1:8000", "server `host:port`")
	path     = flag.String("path", "/", "request `path`")
	n        = flag.Int("n", 1000, "connections")
	target   = flag.Float64("rate", 0, "paced rate each stream should hold, `bytes/s`")
	burst    = flag.Int64("burst", 0, "burst `bytes`: the window starts once every stream has received this much")
	settle   = flag.Duration("settle", 2*time.Second, "wait after every stream is past its burst")
	window   = flag.Duration("window", 20*time.Second, "measurement window")
	hold     = flag.Duration("hold", 0, "keep the streams open this long after the window")
	ready    = flag.String("ready", "", "`file` to create when the window is over")
	pidsF    = flag.String("pids", "", "comma-separated server `pids` (CPU and RSS are their sum)")
	core     = flag.String("core", "cpu0", "the server's core, as /proc/stat names it")
	kpidF    = flag.String("ksoftirqd", "", "`pid` of the server core's ksoftirqd: loopback receive work the server's sends cause lands there when the core is busy")
	srcs     = flag.Int("src", 1, "source addresses: 127.0.0.1 .. 127.0.0.`K`")
	conc     = flag.Int("conc", 128, "connections being opened at once")
	bufSize  = flag.Int("buf", 32<<10, "read buffer per connection, `bytes`")
	deadline = flag.Duration("timeout", 120*time.Second, "give up on connecting and bursts after this")
	label    = flag.String("label", "", "label printed with the result")
)

// conn is one stream's state.
type conn struct {
	c    net.Conn
	body atomic.Int64 // body bytes received
}

var (
	dialErr, statusErr, eofEarly, readErr atomic.Int64
	connected                             atomic.Int64
	stopping                              atomic.Bool
	firstErr                              atomic.Value // string
)

func fail(ctr *atomic.Int64, err string) {
	ctr.Add(1)
	firstErr.CompareAndSwap(nil, err)
}

func main() {
	flag.Parse()
	if *n <= 0 || *target <= 0 || *srcs < 1 || *srcs > 250 {
		fmt.Fprintln(os.Stderr, "paceclient: -n and -rate must be positive, -src 1..250")
		os.Exit(2)
	}
	pids := strings.Split(*pidsF, ",")
	_, idleRSS := sample(pids)

	// Server RSS sampled every 250 ms for the whole run: its maximum.
	var maxRSS atomic.Int64
	go func() {
		for {
			if _, r := sample(pids); r > maxRSS.Load() {
				maxRSS.Store(r)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}()

	req := []byte(fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: paceclient\r\nConnection: close\r\n\r\n", *path, *addr))
	conns := make([]*conn, *n)
	ctx, cancel := context.WithTimeout(context.Background(), *deadline)
	defer cancel()
	dialers := make([]*net.Dialer, *srcs)
	for i := range dialers {
		dialers[i] = &net.Dialer{
			LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(i+1))},
			// The port is picked at connect, per destination, not at
			// bind: 10,000 connections do not need 10,000 ports that are
			// free towards every destination.
			Control: func(_, _ string, rc syscall.RawConn) error {
				return rc.Control(func(fd uintptr) {
					syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, 24 /* IP_BIND_ADDRESS_NO_PORT */, 1)
				})
			},
		}
	}

	tStart := time.Now()
	sem := make(chan struct{}, *conc)
	var wg sync.WaitGroup
	for i := range conns {
		if ctx.Err() != nil {
			fail(&dialErr, "connect: "+ctx.Err().Error())
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			c, err := dialers[i%*srcs].DialContext(ctx, "tcp", *addr)
			if err == nil {
				_, err = c.Write(req)
			}
			var cn *conn
			if err == nil {
				cn = &conn{c: c}
				conns[i] = cn
				connected.Add(1)
			}
			<-sem
			wg.Done()
			if err != nil {
				fail(&dialErr, err.Error())
				if c != nil {
					c.Close()
				}
				return
			}
			cn.read()
		}(i)
	}
	wg.Wait()
	tConn := time.Since(tStart)

	// Wait until every stream that is still open has its burst.
	past := func() (int, int) {
		open, done := 0, 0
		for _, c := range conns {
			if c == nil {
				continue
			}
			open++
			if c.body.Load() >= *burst {
				done++
			}
		}
		return open, done
	}
	open, done := past()
	for done < open && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
		open, done = past()
	}
	tBurst := time.Since(tStart)
	time.Sleep(*settle)

	// The window.
	snap := make([]int64, len(conns))
	tk0, rss0 := sample(pids)
	kt0, _ := procCPU(*kpidF)
	cb0, ct0 := coreStat(*core)
	cf0 := coreFields(*core)
	self0, _ := procCPU("self")
	t0 := time.Now()
	for i, c := range conns {
		if c != nil {
			snap[i] = c.body.Load()
		}
	}
	fails0 := failures()
	time.Sleep(*window)
	var tot int64
	rates := make([]float64, 0, len(conns))
	for i, c := range conns {
		if c != nil {
			d := c.body.Load() - snap[i]
			tot += d
			rates = append(rates, float64(d))
		}
	}
	el := time.Since(t0).Seconds()
	tk1, rss1 := sample(pids)
	kt1, _ := procCPU(*kpidF)
	cb1, ct1 := coreStat(*core)
	cf1 := coreFields(*core)
	self1, _ := procCPU("self")
	fails1 := failures()
	for i := range rates {
		rates[i] /= el * *target
	}
	sort.Float64s(rates)
	pct := func(p float64) float64 {
		if len(rates) == 0 {
			return 0
		}
		return rates[int(p*float64(len(rates)-1)+0.5)]
	}
	outside := 0
	for _, r := range rates {
		if r < 0.95 || r > 1.05 {
			outside++
		}
	}
	if *ready != "" {
		os.WriteFile(*ready, nil, 0o644)
	}
	time.Sleep(*hold)
	// Failures up to the end of the hold count too.
	failsEnd := failures()
	stopping.Store(true)
	for _, c := range conns {
		if c != nil {
			c.c.Close()
		}
	}

	hz := 100.0 // CLK_TCK on Linux
	gbit := float64(tot) * 8 / 1e9
	cpuS := float64(tk1-tk0) / hz
	ksoftS := float64(kt1-kt0) / hz
	coreS := 0.0
	if ct1 > ct0 {
		coreS = float64(cb1-cb0) / float64(ct1-ct0) * el
	}
	rssWin := (rss0 + rss1) / 2
	perStream := float64(rssWin-idleRSS) / float64(max(len(rates), 1))
	fe, _ := firstErr.Load().(string)
	fmt.Fprintf(os.Stderr, "%s: %d/%d connected in %.1fs, all past the burst at %.1fs (%d of %d), window %.1fs: %.2f Gbit, server %.2f CPU-s, RSS %d->%d KB, rate/target p50 %.4f min %.4f max %.4f, failures %d\n",
		*label, connected.Load(), *n, tConn.Seconds(), tBurst.Seconds(), done, open, el, gbit, cpuS, idleRSS, rssWin, pct(.5), pct(0), pct(1), failsEnd)
	fmt.Printf("RESULT label=%s n=%d connected=%d connect_s=%.2f burst_s=%.2f burst_done=%d window_s=%.2f bytes=%d gbit=%.4f "+
		"agg_mbyte_s=%.2f target_agg_mbyte_s=%.2f cpu_s=%.3f cpu_s_per_gbit=%.5f ksoftirqd_cpu_s=%.3f cpu_ksoftirqd_s_per_gbit=%.5f "+
		"core_busy_s=%.3f core_s_per_gbit=%.5f core_user=%d core_system=%d core_softirq=%d core_irq=%d core_steal=%d "+
		"rss_idle_kb=%d rss_t0_kb=%d rss_t1_kb=%d rss_max_kb=%d rss_extra_per_stream_kb=%.2f "+
		"rate_min=%.4f rate_p1=%.4f rate_p5=%.4f rate_p50=%.4f rate_p95=%.4f rate_p99=%.4f rate_max=%.4f rate_outside_5pct=%d "+
		"fail_dial=%d fail_status=%d fail_eof=%d fail_read=%d fail_in_window=%d client_cpu_s=%.2f first_error=%q\n",
		*label, *n, connected.Load(), tConn.Seconds(), tBurst.Seconds(), done, el, tot, gbit,
		float64(tot)/el/1e6, *target*float64(len(rates))/1e6, cpuS, cpuS/gbit, ksoftS, (cpuS+ksoftS)/gbit,
		coreS, coreS/gbit, cf1[0]-cf0[0], cf1[2]-cf0[2], cf1[6]-cf0[6], cf1[5]-cf0[5], cf1[7]-cf0[7],
		idleRSS, rss0, rss1, maxRSS.Load(), perStream,
		pct(0), pct(.01), pct(.05), pct(.5), pct(.95), pct(.99), pct(1), outside,
		dialErr.Load(), statusErr.Load(), eofEarly.Load(), readErr.Load(), fails1-fails0,
		float64(self1-self0)/hz, fe)
}

func failures() int64 {
	return dialErr.Load() + statusErr.Load() + eofEarly.Load() + readErr.Load()
}

// read reads c's response until the end, counting body bytes; a status
// other than 200 or 206, or an end before the client stops, is a failure.
func (c *conn) read() {
	buf := make([]byte, *bufSize)
	var head []byte // the response head while it is incomplete
	inBody := false
	for {
		k, err := c.c.Read(buf)
		if k > 0 {
			b := buf[:k]
			if !inBody {
				head = append(head, b...)
				j := bytes.Index(head, []byte("\r\n\r\n"))
				switch {
				case j >= 0:
					if !bytes.HasPrefix(head, []byte("HTTP/1.1 200 ")) && !bytes.HasPrefix(head, []byte("HTTP/1.1 206 ")) {
						line, _, _ := bytes.Cut(head, []byte("\r\n"))
						fail(&statusErr, "status: "+string(line))
						c.c.Close()
						return
					}
					inBody = true
					c.body.Add(int64(len(head) - j - 4))
					head = nil
				case len(head) > 64<<10:
					fail(&statusErr, "no end of the response head in 64 KiB")
					c.c.Close()
					return
				}
			} else {
				c.body.Add(int64(k))
			}
		}
		if err != nil {
			if !stopping.Load() {
				if errors.Is(err, io.EOF) {
					fail(&eofEarly, fmt.Sprintf("the server ended a stream after %d body bytes", c.body.Load()))
				} else {
					fail(&readErr, "read: "+err.Error())
				}
			}
			return
		}
	}
}

// procCPU returns a process's CPU time (user + system, in clock ticks, all
// its threads) and its RSS in KB.
func procCPU(pid string) (ticks, rssKB int64) {
	if pid == "" {
		return 0, 0
	}
	if b, err := os.ReadFile("/proc/" + pid + "/stat"); err == nil {
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
			f := strings.Fields(s[i+2:])
			if len(f) > 12 {
				u, _ := strconv.ParseInt(f[11], 10, 64)
				st, _ := strconv.ParseInt(f[12], 10, 64)
				ticks = u + st
			}
		}
	}
	if b, err := os.ReadFile("/proc/" + pid + "/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "VmRSS:") {
				if f := strings.Fields(l); len(f) > 1 {
					rssKB, _ = strconv.ParseInt(f[1], 10, 64)
				}
			}
		}
	}
	return
}

func sample(pids []string) (ticks, rss int64) {
	for _, p := range pids {
		if p == "" {
			continue
		}
		t, r := procCPU(p)
		ticks += t
		rss += r
	}
	return
}

// coreFields returns a core's jiffies from /proc/stat: user, nice, system,
// idle, iowait, irq, softirq, steal.
func coreFields(name string) [8]int64 {
	var r [8]int64
	b, _ := os.ReadFile("/proc/stat")
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 8 && f[0] == name {
			for i := range r {
				r[i], _ = strconv.ParseInt(f[i+1], 10, 64)
			}
		}
	}
	return r
}

// coreStat returns a core's busy and total jiffies from /proc/stat (busy:
// all but idle, iowait and steal, so softirq work done on it counts, and
// so does any other process that runs there).
func coreStat(name string) (busy, total int64) {
	b, _ := os.ReadFile("/proc/stat")
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 8 && f[0] == name {
			for i := 1; i <= 8; i++ {
				v, _ := strconv.ParseInt(f[i], 10, 64)
				total += v
				if i != 4 && i != 5 && i != 8 { // idle, iowait, steal (the hypervisor's)
					busy += v
				}
			}
		}
	}
	return
}

func init() {
	// The reads are many and short; one P is the client's core.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}
