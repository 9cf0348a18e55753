package main

import (
	"context"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"mustserv/internal/auth"
	"mustserv/internal/cluster"
	"mustserv/internal/config"
	"mustserv/internal/index"
	"mustserv/internal/metrics"
	"mustserv/internal/pace"
	"mustserv/internal/scan"
)

// node is the server as one node behind a load balancer: its readiness
// (/readyz), drain switch and, with peers, what it reads of them. It is
// web.Node.
type node struct {
	name  string
	state *cluster.State
	peers *cluster.Cluster // nil without peers
	place bool             // cluster.placement
}

// newNode returns the node of cfg: ready once started and the index has
// been built (every library scanned once, now or by an earlier run), while
// not draining and the pacer's uplink budget has room.
func newNode(cfg config.Config, p *pace.Pacer, idx *index.Index, s *scan.Scanner, a *auth.Service, log *slog.Logger) *node {
	n := &node{name: cfg.Cluster.Name, place: cfg.Cluster.Placement}
	if n.name == "" {
		n.name, _ = os.Hostname()
	}
	names := map[string]bool{}
	for _, l := range cfg.Libraries {
		names[l.Name] = true
	}
	n.state = &cluster.State{
		Indexed: func() bool {
			if !s.Progress().Finished.IsZero() {
				return true
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			libs, err := idx.Libraries(ctx)
			if err != nil {
				return false
			}
			scanned := 0
			for _, l := range libs {
				if names[l.Name] && !l.ScannedAt.IsZero() {
					scanned++
				}
			}
			return scanned == len(names)
		},
		Uplink: func() cluster.Uplink { return uplinkOf(p.Stats()) },
	}
	if len(cfg.Cluster.Peers) > 0 {
		o := cluster.Options{Peers: cfg.Cluster.Peers, Poll: time.Duration(cfg.Cluster.Poll), Logger: log}
		if a != nil {
			o.Token = a.NodeToken
		}
		n.peers = cluster.New(o)
	}
	return n
}

// directURL is web.Options.Direct: the node's own URL with cluster.direct
// on, else "".
func directURL(c config.Cluster) string {
	if !c.Direct {
		return ""
	}
	return strings.TrimSuffix(c.URL, "/")
}

// mediaOrigins are the origins the pages' player may be redirected to
// for a stream (placement, direct): this node's and its peers'.
func mediaOrigins(c config.Cluster) []string {
	if !c.Placement && !c.Direct {
		return nil
	}
	var out []string
	for _, raw := range append([]string{c.URL}, c.Peers...) {
		if u, err := url.Parse(raw); err == nil && u.Host != "" {
			out = append(out, u.Scheme+"://"+u.Host)
		}
	}
	return out
}

// uplinkOf is the pacer's budget in the cluster's units (bit/s).
func uplinkOf(st pace.Stats) cluster.Uplink {
	return cluster.Uplink{Budget: st.Uplink * 8, Reserved: st.Reserved * 8, Active: st.Active}
}

func (n *node) Name() string        { return n.name }
func (n *node) Ready() error        { return n.state.Ready() }
func (n *node) Serving() error      { return n.state.Serving() }
func (n *node) Draining() bool      { return n.state.Draining() }
func (n *node) SetDraining(on bool) { n.state.SetDraining(on) }

func (n *node) Peers() []cluster.Peer {
	if n.peers == nil {
		return nil
	}
	return n.peers.Peers()
}

// run reads the peers until ctx ends.
func (n *node) run(ctx context.Context) {
	if n.peers != nil {
		n.peers.Run(ctx)
	}
}

// placer is web.Options.Place: nil unless placement is on.
func (n *node) placer() func(need int64, accept func(string) bool) (string, bool) {
	if !n.place || n.peers == nil {
		return nil
	}
	return func(need int64, accept func(string) bool) (string, bool) {
		return n.peers.Pick(need, time.Now(), accept)
	}
}

// registerNode adds what a load balancer and the other nodes read to r.
func registerNode(r *metrics.Registry, n *node, p *pace.Pacer) {
	r.GaugeFunc("mustserv_ready", "1 while /readyz answers 200: started, index built, not draining, uplink budget not exhausted.",
		func() float64 { return boolGauge(n.Ready() == nil) })
	r.GaugeFunc(cluster.MetricOpen, "1 while the node takes new streams that fit its uplink budget: started, index built, not draining (what peers place by).",
		func() float64 { return boolGauge(n.state.Open() == nil) })
	r.GaugeFunc("mustserv_draining", "1 while the node drains (SIGTERM or an admin): no new streams, running ones finish.",
		func() float64 { return boolGauge(n.Draining()) })
	r.GaugeFunc("mustserv_uplink_free_bits_per_second", "The uplink budget not reserved by active streams; -1 when unlimited.",
		func() float64 { return float64(uplinkOf(p.Stats()).Free()) })
	r.GaugeFunc("mustserv_peers_ready", "Peers whose last read /metrics said open for new streams (placement sends streams only there).",
		func() float64 {
			ready := 0
			for _, p := range n.Peers() {
				if p.Ready && p.Err == "" {
					ready++
				}
			}
			return float64(ready)
		})
	r.CounterFunc("mustserv_streams_placed_total", "Streams the uplink budget could not take, redirected (307) to a peer with room.",
		func() float64 {
			if n.peers == nil {
				return 0
			}
			return float64(n.peers.Redirected())
		})
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
