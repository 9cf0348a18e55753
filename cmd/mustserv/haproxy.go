package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// haproxyNode is one --node of haproxy-config.
type haproxyNode struct {
	url    *url.URL
	weight int
}

// balances are the algorithms haproxy-config offers; "weighted" is
// roundrobin, named for the node weights it is meant with.
var balances = map[string]string{
	"leastconn": "leastconn", "roundrobin": "roundrobin", "weighted": "roundrobin", "random": "random",
}

// parseHAProxyNode parses URL[=weight].
func parseHAProxyNode(s string) (haproxyNode, error) {
	raw, w := s, 1
	if i := strings.LastIndexByte(s, '='); i > 0 && !strings.Contains(s[i:], "/") {
		n, err := strconv.Atoi(s[i+1:])
		if err != nil || n < 1 || n > 256 {
			return haproxyNode{}, fmt.Errorf("--node %q: the weight must be 1 to 256", s)
		}
		raw, w = s[:i], n
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return haproxyNode{}, fmt.Errorf("--node %q: want a node's URL such as http://10.0.0.2:8000 (with =WEIGHT, optionally)", s)
	}
	return haproxyNode{url: u, weight: w}, nil
}

// hostPort is the node's address for HAProxy's server line.
func (n haproxyNode) hostPort() string {
	port := n.url.Port()
	if port == "" {
		port = "80"
		if n.url.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(n.url.Hostname(), port)
}

// runHAProxyConfig prints an HAProxy configuration for the nodes given
// (docs/deploy.md explains it).
func runHAProxyConfig(args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("haproxy-config", flag.ContinueOnError)
	fset.SetOutput(stderr)
	var nodes []haproxyNode
	fset.Func("node", "a node's `URL[=WEIGHT]` (repeat for each node)", func(s string) error {
		n, err := parseHAProxyNode(s)
		if err == nil {
			nodes = append(nodes, n)
		}
		return err
	})
	balance := fset.String("balance", "leastconn", "`algorithm` for streams: leastconn, roundrobin, weighted or random")
	listen := fset.String("listen", "*:8000", "`address` the balancer listens on")
	inter := fset.Duration("check-interval", 2*time.Second, "how often each node's /readyz is checked")
	fall := fset.Int("fall", 2, "failed checks before a node is taken out")
	rise := fset.Int("rise", 2, "good checks before a node is put back")
	if err := fset.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	algo, ok := balances[*balance]
	switch {
	case fset.NArg() > 0:
		return usageError{fmt.Sprintf("unexpected argument %q (nodes are given with --node)", fset.Arg(0))}
	case len(nodes) == 0:
		return usageError{"usage: mustserv haproxy-config --node URL[=WEIGHT]... [--balance leastconn|roundrobin|weighted|random]"}
	case !ok:
		return usageError{fmt.Sprintf("--balance %q: want leastconn, roundrobin, weighted or random", *balance)}
	case *inter < 100*time.Millisecond || *fall < 1 || *rise < 1:
		return usageError{"--check-interval must be at least 100ms, --fall and --rise at least 1"}
	}
	if _, _, err := net.SplitHostPort(*listen); err != nil {
		return usageError{fmt.Sprintf("--listen %q: %v", *listen, err)}
	}
	fmt.Fprint(stdout, haproxyConfig(nodes, algo, *balance, *listen, *inter, *fall, *rise))
	return nil
}

// haproxyConfig writes the configuration: streams (/stream/) go to nodes
// whose /readyz says 200 by algo; pages, the API and playlists to nodes
// whose index is built (/readyz?for=pages), so that browsing goes on while
// the streams' uplink is full or a node drains; when no node qualifies,
// every live one (/healthz) answers for itself.
func haproxyConfig(nodes []haproxyNode, algo, asked, listen string, inter time.Duration, fall, rise int) string {
	var b strings.Builder
	ms := inter.Milliseconds()
	fmt.Fprintf(&b, `# HAProxy configuration for %d MuStServ nodes (mustserv haproxy-config, %s).
# Nodes must trust the balancer's X-Forwarded-For: in each node's config,
#   [server] trusted_proxies = ["<this balancer's address>"]
# and share the signing key ([auth] key_file) and the accounts ([auth] state_url).
global
    # No maxconn: HAProxy sizes it from the file descriptor limit
    # (systemd's LimitNOFILE); every stream holds two descriptors here.

defaults
    mode http
    option http-server-close
    option forwardfor
    option redispatch
    retries 2
    timeout connect 3s
    timeout http-request 10s
    timeout http-keep-alive 120s
    timeout queue 30s
    # Inactivity limits, not lengths: a stream may last hours. A paced
    # stream sends every second or so; a paused player holds its connection
    # until the node's write_stall (60 s) ends it.
    timeout client 120s
    timeout server 120s

frontend mustserv
    bind %s
    http-request set-header X-Forwarded-Proto https if { ssl_fc }
    http-request set-header X-Forwarded-Proto http if !{ ssl_fc }
    # The nodes trust this balancer's X-Forwarded-* headers: never a client's.
    http-request del-header X-Forwarded-Host
    use_backend streams if { path_beg /stream/ }
    default_backend pages

# Streams: only nodes that take new ones (/readyz: index built, not
# draining, uplink budget not exhausted). A node taken out keeps its
# running streams. When none takes new ones, the live nodes (the backups,
# which follow the alive backend's checks) answer for themselves: their
# own 503 with Retry-After, or a 307 to a peer with room, never HAProxy's
# bare 503.
backend streams
    balance %s
    option httpchk GET /readyz
    http-check expect status 200
    option allbackups
    default-server inter %dms fastinter %dms downinter %dms fall %d rise %d
`, len(nodes), asked, listen, algo, ms, max(ms/2, 100), ms, fall, rise)
	for i, n := range nodes {
		fmt.Fprintf(&b, "    server node%d %s check weight %d%s\n", i+1, n.hostPort(), n.weight, tlsOpts(n))
	}
	for i, n := range nodes {
		fmt.Fprintf(&b, "    server node%d-live %s backup track alive/node%d weight %d%s\n", i+1, n.hostPort(), i+1, n.weight, tlsOpts(n))
	}
	fmt.Fprintf(&b, `
# Pages, the API and playlists: nodes whose index is built, draining or
# full or not (/readyz?for=pages); while none is (a new cluster's first
# scan), every live one.
backend pages
    balance %s
    option httpchk GET /readyz?for=pages
    http-check expect status 200
    option allbackups
    default-server inter %dms fall %d rise %d
`, algo, ms, fall, rise)
	for i, n := range nodes {
		fmt.Fprintf(&b, "    server node%d %s check weight %d%s\n", i+1, n.hostPort(), n.weight, tlsOpts(n))
	}
	for i, n := range nodes {
		fmt.Fprintf(&b, "    server node%d-live %s backup track alive/node%d weight %d%s\n", i+1, n.hostPort(), i+1, n.weight, tlsOpts(n))
	}
	fmt.Fprintf(&b, `
# No traffic: which nodes are alive at all (/healthz), for the backups above.
backend alive
    option httpchk GET /healthz
    http-check expect status 200
    default-server inter %dms fall %d rise %d
`, ms, fall, rise)
	for i, n := range nodes {
		fmt.Fprintf(&b, "    server node%d %s check%s\n", i+1, n.hostPort(), tlsOpts(n))
	}
	return b.String()
}

// tlsOpts are the server line's options for a node served over HTTPS:
// verified against the system's CAs, with SNI.
func tlsOpts(n haproxyNode) string {
	if n.url.Scheme != "https" {
		return ""
	}
	h := n.url.Hostname()
	return fmt.Sprintf(" ssl verify required ca-file /etc/ssl/certs/ca-certificates.crt sni str(%s) check-sni %s", h, h)
}
