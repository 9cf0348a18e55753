package main

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"mustserv/internal/loadgen"
	"mustserv/internal/testenv/haproxy"
)

// TestPlacementBenchmark (bench/placement.sh; skipped unless
// MUSTSERV_PLACEMENT_BENCH=1): three nodes with uplink budgets of 4, 4 and
// 16 Mbit/s (31, 31 and 124 streams of a 128 kbit/s file), 180 players
// joining over 3.6 s and watching 20 s. Round robin without placement
// sends a third of them to each node, and the two small ones refuse what
// does not fit; with placement they redirect it to the node with room;
// with direct mode too, every stream through the balancer is redirected to
// its node, and the balancer's share of the bytes is measured.
// The table goes to the test log and to $MUSTSERV_BENCH_OUT if set.
func TestPlacementBenchmark(t *testing.T) {
	if os.Getenv("MUSTSERV_PLACEMENT_BENCH") != "1" {
		t.Skip("a benchmark: bash bench/placement.sh runs it")
	}
	budgets := []string{"4Mbit", "4Mbit", "16Mbit"}
	const players = 180
	cfg := loadgen.Config{Players: players, Join: 20 * time.Millisecond, WatchMin: 20 * time.Second, Seed: 7}
	var rows []string
	for _, o := range []clusterOptions{{}, {Placement: true}, {Placement: true, Direct: true}} {
		o.Uplink = func(i int) string { return budgets[i] }
		c := newCluster(t, 3, clusterFiles(), o)
		key := c.key
		p, lb := c.balancer(t, "roundrobin")
		viaLB, _ := c.targets(t, lb)
		// Round-robin DNS: the players take the nodes' own URLs in turn.
		var direct []loadgen.Target
		for i := range viaLB {
			for _, nd := range c.nodes {
				tg := viaLB[i]
				tg.URL = strings.Replace(tg.URL, lb, nd.url, 1)
				direct = append(direct, tg)
			}
		}
		runs := []struct {
			name    string
			targets []loadgen.Target
		}{
			{"round robin (DNS)", direct},
			{"HAProxy roundrobin, /readyz checks", viaLB},
		}
		if o.Direct {
			runs = runs[1:] // direct mode acts on what comes through the balancer
		}
		for _, run := range runs {
			before, lbBefore := c.admitted(t, key), balancerBytes(t, p)
			start := time.Now()
			rep := c.play(t, playerCtx(t), run.targets, cfg)
			s := rep.Summary
			name := run.name
			if o.Placement {
				name += " + placement"
			}
			if o.Direct {
				name += " + direct"
			}
			lbMB := "–"
			if strings.HasPrefix(run.name, "HAProxy") {
				lbMB = fmt.Sprintf("%.1f MB", float64(balancerBytes(t, p)-lbBefore)/1e6)
			}
			row := fmt.Sprintf("| %s | %d | %d | %d | %d | %d | %d | %s | %s | %.0f s |", name, s.Players, s.OK, s.Rejected,
				s.StallFree, s.Stalls, s.Redirects, fmtInts(sub(c.admitted(t, key), before)), lbMB, time.Since(start).Seconds())
			t.Log(row)
			rows = append(rows, row)
			// The next run starts with every node's budget free again.
			waitUntil(t, 60*time.Second, "every stream ended", func() bool {
				for _, nd := range c.nodes {
					if c.scrape(t, nd, key)["mustserv_streams_active"] != 0 {
						return false
					}
				}
				return true
			})
		}
	}
	table := "| run | players | ok | refused (503) | stall-free | stalls | redirects (307) | streams per node | stream bytes through the balancer | wall |\n" +
		"|---|---|---|---|---|---|---|---|---|---|\n" + strings.Join(rows, "\n") + "\n"
	t.Log("\n" + table)
	if out := os.Getenv("MUSTSERV_BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(table), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// balancerBytes is what the streams backend of p sent the players.
func balancerBytes(t *testing.T, p *haproxy.Proxy) int {
	t.Helper()
	s, err := p.Servers()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for key, srv := range s {
		if strings.HasPrefix(key, "streams/") {
			n += srv.BytesOut
		}
	}
	return n
}

// scrape reads a node's /metrics with an API key.
func (c *testCluster) scrape(t *testing.T, nd *clusterNode, key string) map[string]float64 {
	t.Helper()
	resp, body := get(t, nd.url+"/metrics", "Authorization", "Bearer "+key)
	m, err := parseExposition(string(body))
	if resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("%s/metrics: %s %v", nd.url, resp.Status, err)
	}
	return m
}

// admitted is each node's mustserv_streams_admitted_total.
func (c *testCluster) admitted(t *testing.T, key string) []int {
	out := make([]int, len(c.nodes))
	for i, nd := range c.nodes {
		out[i] = int(c.scrape(t, nd, key)["mustserv_streams_admitted_total"])
	}
	return out
}

func fmtInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, " / ")
}
