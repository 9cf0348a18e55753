// Command searchbench measures search latency over HTTP: it builds a mix of
// queries from what a running MuStServ's index holds (artist and album names,
// title words; whole words, prefixes as typed letter by letter, two-word
// queries, field filters, phrases, year ranges, words that match nothing),
// sends them one after another over one keep-alive connection, and prints
// the latency percentiles. Any answer other than 200 is counted and makes
// the exit status 1.
//
// usage: go run ./bench/searchbench -url http://127.0.0.1:8000 [-n 1000] [-seed 1]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

func main() {
	base := flag.String("url", "http://127.0.0.1:8000", "server `URL`")
	n := flag.Int("n", 1000, "queries to time")
	seed := flag.Uint64("seed", 1, "random `seed` of the query mix")
	flag.Parse()
	if err := run(*base, *n, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "searchbench:", err)
		os.Exit(1)
	}
}

func run(base string, n int, seed uint64) error {
	c := &http.Client{Timeout: 30 * time.Second}
	words, names, err := vocabulary(c, base)
	if err != nil {
		return err
	}
	if len(words) == 0 || len(names) == 0 {
		return fmt.Errorf("the index at %s has no artists or albums", base)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	qs := mix(rng, words, names, n)
	// Warm up: the first queries load pages of the index into the cache.
	for _, q := range qs[:min(50, len(qs))] {
		if _, _, err := search(c, base, q); err != nil {
			return err
		}
	}
	lat := make([]time.Duration, 0, len(qs))
	bad, empty := 0, 0
	for _, q := range qs {
		t0 := time.Now()
		code, total, err := search(c, base, q)
		d := time.Since(t0)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			bad++
			fmt.Fprintf(os.Stderr, "searchbench: %q: status %d\n", q, code)
			continue
		}
		if total == 0 {
			empty++
		}
		lat = append(lat, d)
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	fmt.Printf("queries %d, non-200 %d, no match %d\n", len(qs), bad, empty)
	fmt.Printf("latency p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
		ms(pct(0.50)), ms(pct(0.90)), ms(pct(0.99)), ms(pct(1)))
	if bad > 0 {
		return fmt.Errorf("%d queries failed", bad)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// vocabulary returns title/album words and artist/album names from the
// server's index.
func vocabulary(c *http.Client, base string) (words, names []string, err error) {
	var artists struct {
		Artists []struct{ Name string } `json:"artists"`
	}
	var albums struct {
		Albums []struct{ Name, Artist string } `json:"albums"`
	}
	if err := getJSON(c, base+"/api/artists?limit=500", &artists); err != nil {
		return nil, nil, err
	}
	if err := getJSON(c, base+"/api/albums?limit=500&offset=100", &albums); err != nil {
		return nil, nil, err
	}
	seen := map[string]bool{}
	add := func(w string) {
		w = strings.ToLower(strings.Trim(w, ".,;:!?'\"()[]"))
		if len([]rune(w)) >= 3 && !seen[w] {
			seen[w] = true
			words = append(words, w)
		}
	}
	for _, a := range artists.Artists {
		names = append(names, a.Name)
	}
	for _, a := range albums.Albums {
		names = append(names, a.Name)
		for _, w := range strings.Fields(a.Name) {
			add(w)
		}
	}
	return words, names, nil
}

// mix builds n queries of the kinds a user types.
func mix(rng *rand.Rand, words, names []string, n int) []string {
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	qs := make([]string, 0, n)
	for len(qs) < n {
		switch k := rng.IntN(20); {
		case k < 5: // a word typed letter by letter: its prefixes
			w := []rune(pick(words))
			for i := 1; i <= len(w) && len(qs) < n; i++ {
				qs = append(qs, string(w[:i]))
			}
		case k < 8: // a whole name, without its accents half the time
			q := strings.ToLower(pick(names))
			if rng.IntN(2) == 0 {
				q = stripAccents(q)
			}
			qs = append(qs, q)
		case k < 11: // two words
			qs = append(qs, pick(words)+" "+pick(words))
		case k < 13:
			qs = append(qs, "artist:"+strings.Fields(strings.ToLower(pick(names)))[0])
		case k < 14:
			qs = append(qs, fmt.Sprintf("year:%d-%d", 1960+rng.IntN(50), 2010+rng.IntN(15)))
		case k < 15:
			qs = append(qs, fmt.Sprintf("%s year:%d", pick(words), 1960+rng.IntN(65)))
		case k < 16:
			qs = append(qs, `"`+strings.ToLower(pick(names))+`"`)
		case k < 17:
			qs = append(qs, "genre:"+pick([]string{"rock", "jazz", "pop", "classical", "electronic", "folk"}))
		case k < 18:
			qs = append(qs, pick(words)+" -"+pick(words))
		default: // nothing matches
			qs = append(qs, fmt.Sprintf("zqx%dvw", rng.IntN(1000)))
		}
	}
	return qs
}

// stripAccents writes Latin letters without their accents, as a user
// without the keys for them types.
func stripAccents(s string) string { return accents.Replace(s) }

var accents = strings.NewReplacer("á", "a", "à", "a", "â", "a", "ä", "a", "ã", "a", "å", "a",
	"é", "e", "è", "e", "ê", "e", "ë", "e", "í", "i", "ì", "i", "î", "i", "ï", "i",
	"ó", "o", "ò", "o", "ô", "o", "ö", "o", "õ", "o", "ú", "u", "ù", "u", "û", "u", "ü", "u",
	"ñ", "n", "ç", "c", "ý", "y", "ÿ", "y")

func search(c *http.Client, base, q string) (code, total int, err error) {
	resp, err := c.Get(base + "/api/search?limit=50&q=" + url.QueryEscape(q))
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, 0, nil
	}
	var r struct {
		Total int `json:"total"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, 0, fmt.Errorf("%q: %w", q, err)
	}
	return resp.StatusCode, r.Total, nil
}

func getJSON(c *http.Client, u string, v any) error {
	resp, err := c.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
