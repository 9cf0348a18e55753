package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their files and a pool that trusts it.
func selfSigned(t *testing.T) (cert, key string, pool *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mustserv test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return cert, key, pool
}

// TestTLS: with [tls] the server speaks HTTPS and HTTP/2, sends HSTS
// when asked, marks the session cookie Secure, and streams with ranges.
func TestTLS(t *testing.T) {
	t.Parallel()
	cert, key, pool := selfSigned(t)
	cfg := writeConfig(t, "[tls]\ncert = "+tomlString(cert)+"\nkey = "+tomlString(key)+"\nhsts = true\n")
	data := t.TempDir()
	s := startRun(t, nil, "--auth", "--config", cfg, "--listen", "127.0.0.1:0", "--data", data, filepath.Join(mediaDir, "Videos"))
	if !strings.HasPrefix(s.URL, "https://") {
		t.Fatalf("serving at %s, want https", s.URL)
	}
	if _, _, err := runCmd(t, "user", "add", "ann", "--library", "Videos", "--data", data, "--password-file", passwordFile(t, "ann's password")); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true},
		CheckRedirect: noRedirect.CheckRedirect}
	resp, err := client.PostForm(s.URL+"/login", url.Values{"name": {"ann"}, "password": {"ann's password"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("protocol %s, want HTTP/2", resp.Proto)
	}
	if h := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(h, "max-age=") {
		t.Errorf("Strict-Transport-Security: %q", h)
	}
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "mustserv_session" {
			session = c
		}
	}
	if session == nil || !session.Secure || !session.HttpOnly {
		t.Fatalf("session cookie over HTTPS: %+v", session)
	}
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/stream/"+mp4Path, nil)
	noteSecret(session.Value)
	req.Header.Set("Cookie", "mustserv_session="+session.Value)
	req.Header.Set("Range", "bytes=100-199")
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	want, _ := os.ReadFile(filepath.Join(mediaDir, mp4Path))
	if err != nil || resp.StatusCode != http.StatusPartialContent || resp.ProtoMajor != 2 || string(body) != string(want[100:200]) {
		t.Errorf("range over HTTP/2: %s %s, %d bytes, err %v", resp.Proto, resp.Status, len(body), err)
	}
}
