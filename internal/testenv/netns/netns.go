// Package netns gives an end-to-end test a private IPv4 network: network
// namespaces (one per server node) on a switch, reachable from the test's
// own namespace at an address of a random 10.128.0.0/9 /24, so that
// several nodes can listen on the same port and a load balancer in the
// test's namespace can balance them, and a node can be cut off the network
// (Down) as if its cable were pulled.
//
// The switch is a bridge in a namespace of its own, joined to the test's
// namespace by one veth pair. Keeping the bridge out of the host's
// namespace keeps bridged traffic (node to node) away from the host's
// firewall: with br_netfilter loaded and
// /proc/sys/net/bridge/bridge-nf-call-iptables at 1 (the default, and what
// Docker sets), every bridged frame goes through the iptables FORWARD chain
// of the bridge's namespace, which Docker sets to DROP. A new namespace
// has empty tables, so nothing is filtered there and no global setting has
// to change. The host's namespace only ever sees one interface per Net
// (named like the Net, "msb" and six hex digits) and the namespaces' names
// in `ip netns list` (the same name, and the name and "-0", "-1"... for
// the nodes).
//
// Everything is removed by the test's cleanup, also when the test fails
// half-way; a test binary that is killed leaves them behind (remove them
// with `ip link del msb…` and `ip netns del msb…`). It needs root and the
// `ip` program of iproute2 (skipped without them, failed in CI). It does
// not do IPv6, routing beyond the /24, or traffic shaping, and it is
// imported by tests only.
package netns

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"mustserv/internal/testenv"
)

// space holds every /24 New picks from.
var space = netip.MustParsePrefix("10.128.0.0/9")

// firstNode is the last byte of the first node's address (Host is .1).
const firstNode = 10

// Net is a private IPv4 network for one test: a switch with address Host in
// the test's (host) namespace, and namespaces attached to it by Add.
type Net struct {
	Host   netip.Addr   // the address in the test's namespace, .1 of Prefix
	Prefix netip.Prefix // the /24 of Host and every node
	Name   string       // "msb" and 6 hex digits: the host's interface and the switch's namespace

	ip string // the ip program

	mu    sync.Mutex
	nodes int        // namespaces added so far
	undo  [][]string // ip commands that remove what was made, in order made
}

// NS is a network namespace attached to a Net by Add.
type NS struct {
	Name string     // the namespace's name, for `ip netns exec`
	Addr netip.Addr // the address of its interface eth0 on the Net

	ip   string // the ip program
	sw   string // the switch's namespace
	port string // the switch's end of the namespace's veth pair
}

// New makes a Net on a random /24 of 10.128.0.0/9 that no address or route
// of the test's namespace overlaps, other than routes covering all of
// 10.128.0.0/9 such as the default route (the Net's more specific route
// wins over them for its /24). Before it makes anything, it registers a
// cleanup of t that removes the namespaces and interfaces made by New and
// Add, so that they go also when New, Add or the test fails half-way.
// Without root or `ip` the test is skipped (failed in CI).
func New(t testing.TB) *Net {
	t.Helper()
	testenv.NeedRoot(t)
	n := &Net{ip: testenv.NeedTool(t, "ip"), Name: "msb" + hexID()}
	t.Cleanup(func() { n.remove(t) })

	// The bridge lives in the switch's namespace (see the package doc),
	// and up0 is the switch's end of the link to the host.
	n.must(t, "netns", "add", n.Name)
	n.made("netns", "del", n.Name)
	n.must(t, "-n", n.Name, "link", "add", "br0", "type", "bridge")
	n.must(t, "-n", n.Name, "link", "set", "br0", "up")
	n.must(t, "link", "add", n.Name, "type", "veth", "peer", "name", "up0", "netns", n.Name)
	n.made("link", "del", n.Name) // deletes up0 too, at once, unlike netns del
	n.must(t, "-n", n.Name, "link", "set", "up0", "master", "br0", "up")
	n.must(t, "link", "set", n.Name, "up")

	// Another test process may pick the same /24 between the check and the
	// address: then both see the other's address, and try again.
	for attempt := 0; ; attempt++ {
		p, err := n.freePrefix()
		if err != nil {
			t.Fatal(err)
		}
		host := p.Addr().Next()
		cidr := netip.PrefixFrom(host, p.Bits()).String()
		n.must(t, "addr", "add", cidr, "dev", n.Name)
		clash, err := n.othersIn(p)
		if err != nil {
			t.Fatal(err)
		}
		if clash == "" {
			n.Host, n.Prefix = host, p
			return n
		}
		n.must(t, "addr", "del", cidr, "dev", n.Name)
		if attempt == 9 {
			t.Fatalf("netns: %s is taken by %s as soon as it is free (10 attempts)", p, clash)
		}
	}
}

// Add makes namespace i (the i-th Add on n, from 0) named n.Name-i, with
// loopback up and an interface eth0 at address .10+i of n.Prefix, plugged
// into n's switch. Its cleanup is n's.
func (n *Net) Add(t testing.TB) *NS {
	t.Helper()
	n.mu.Lock()
	i := n.nodes
	n.nodes++
	n.mu.Unlock()
	last := firstNode + i
	if last > 254 {
		t.Fatalf("netns: %s has no address left for namespace %d", n.Prefix, i)
	}
	b := n.Prefix.Addr().As4()
	b[3] = byte(last)
	ns := &NS{Name: n.Name + "-" + strconv.Itoa(i), Addr: netip.AddrFrom4(b),
		ip: n.ip, sw: n.Name, port: "n" + strconv.Itoa(i)}

	n.must(t, "netns", "add", ns.Name)
	n.made("netns", "del", ns.Name)
	// Both ends are made in namespaces of their own, where their names
	// cannot clash, and go when those namespaces go.
	n.must(t, "-n", n.Name, "link", "add", ns.port, "type", "veth", "peer", "name", "eth0", "netns", ns.Name)
	n.must(t, "-n", n.Name, "link", "set", ns.port, "master", "br0", "up")
	n.must(t, "-n", ns.Name, "addr", "add", netip.PrefixFrom(ns.Addr, n.Prefix.Bits()).String(), "dev", "eth0")
	n.must(t, "-n", ns.Name, "link", "set", "eth0", "up")
	n.must(t, "-n", ns.Name, "link", "set", "lo", "up")
	return ns
}

// Command returns a command that runs the program name with args inside the
// namespace, through `ip netns exec`, which execs the program: cmd.Process
// is the program itself, so that Process.Kill kills it, and Wait reports
// its own exit. The caller sets Env, Stdout... and starts it as with
// exec.Command.
func (ns *NS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command(ns.ip, append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// Down cuts the namespace off the network, as a pulled cable would: its
// port on the switch goes down, so that what is sent to it or by it is
// dropped (connections time out rather than being refused). Its processes
// keep running.
func (ns *NS) Down(t testing.TB) {
	t.Helper()
	ns.setPort(t, "down")
}

// Up plugs the namespace back in after Down.
func (ns *NS) Up(t testing.TB) {
	t.Helper()
	ns.setPort(t, "up")
}

// setPort sets the namespace's port on the switch up or down.
func (ns *NS) setPort(t testing.TB, state string) {
	t.Helper()
	if _, err := run(ns.ip, "-n", ns.sw, "link", "set", ns.port, state); err != nil {
		t.Fatalf("netns: %s %s: %v", ns.Name, state, err)
	}
}

// must runs ip with args, failing t if it fails.
func (n *Net) must(t testing.TB, args ...string) {
	t.Helper()
	if _, err := run(n.ip, args...); err != nil {
		t.Fatalf("netns: %v", err)
	}
}

// made records the ip command that removes what was just made.
func (n *Net) made(args ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.undo = append(n.undo, args)
}

// remove undoes what New and Add made, last first, reporting what it
// could not remove as an error of t.
func (n *Net) remove(t testing.TB) {
	n.mu.Lock()
	undo := n.undo
	n.undo = nil
	n.mu.Unlock()
	for i := len(undo) - 1; i >= 0; i-- {
		if _, err := run(n.ip, undo[i]...); err != nil {
			t.Errorf("netns cleanup: %v", err)
		}
	}
}

// freePrefix picks a random /24 of space that nothing in the test's
// namespace overlaps.
func (n *Net) freePrefix() (netip.Prefix, error) {
	used, err := n.used()
	if err != nil {
		return netip.Prefix{}, err
	}
	const tries = 200
	for range tries {
		// 10.128.0.0/9 holds 2^15 /24s: the 2nd and 3rd bytes.
		k := mrand.IntN(1 << (24 - space.Bits()))
		b := space.Addr().As4()
		b[1] |= byte(k >> 8)
		b[2] = byte(k)
		p := netip.PrefixFrom(netip.AddrFrom4(b), 24)
		if !overlapsAny(p, used) {
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("netns: no free /24 in %s after %d random picks; in use: %v", space, tries, used)
}

// othersIn returns the name of an interface other than n's with an address
// in p, or "" if there is none.
func (n *Net) othersIn(p netip.Prefix) (string, error) {
	ifs, err := n.addrs()
	if err != nil {
		return "", err
	}
	for _, i := range ifs {
		for _, a := range i.AddrInfo {
			if q, err := netip.ParsePrefix(a.Local + "/" + strconv.Itoa(a.PrefixLen)); err == nil && q.Overlaps(p) && i.IfName != n.Name {
				return i.IfName, nil
			}
		}
	}
	return "", nil
}

// ipAddrs is the JSON of `ip -j -4 addr`.
type ipAddrs []struct {
	IfName   string `json:"ifname"`
	AddrInfo []struct {
		Local     string `json:"local"`
		PrefixLen int    `json:"prefixlen"`
	} `json:"addr_info"`
}

// addrs lists the IPv4 addresses of the test's namespace.
func (n *Net) addrs() (ipAddrs, error) {
	var ifs ipAddrs
	return ifs, n.json(&ifs, "-j", "-4", "addr", "show")
}

// used lists the prefixes of the test's namespace's addresses and routes
// (of every table), except routes that cover all of space.
func (n *Net) used() ([]netip.Prefix, error) {
	ifs, err := n.addrs()
	if err != nil {
		return nil, err
	}
	var used []netip.Prefix
	for _, i := range ifs {
		for _, a := range i.AddrInfo {
			if p, err := netip.ParsePrefix(a.Local + "/" + strconv.Itoa(a.PrefixLen)); err == nil {
				used = append(used, p.Masked())
			}
		}
	}
	var routes []struct {
		Dst string `json:"dst"`
	}
	if err := n.json(&routes, "-j", "-4", "route", "show", "table", "all"); err != nil {
		return nil, err
	}
	for _, r := range routes {
		dst := r.Dst
		if dst == "default" {
			continue
		}
		if !strings.Contains(dst, "/") {
			dst += "/32"
		}
		p, err := netip.ParsePrefix(dst)
		if err != nil || (p.Bits() <= space.Bits() && p.Contains(space.Addr())) {
			continue
		}
		used = append(used, p)
	}
	return used, nil
}

// json runs ip with args and decodes its JSON output into v.
func (n *Net) json(v any, args ...string) error {
	out, err := run(n.ip, args...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("ip %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// overlapsAny reports whether p overlaps any of used.
func overlapsAny(p netip.Prefix, used []netip.Prefix) bool {
	for _, u := range used {
		if u.Overlaps(p) {
			return true
		}
	}
	return false
}

// run runs the ip program with args and returns its standard output; its
// error carries the command and what ip wrote to stderr.
func run(ip string, args ...string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.Command(ip, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// hexID returns 6 random hex digits, making names that two test processes
// (or tests) running at once do not share.
func hexID() string {
	var b [3]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
