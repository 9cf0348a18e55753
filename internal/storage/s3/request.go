package s3

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"mustserv/internal/storage"
)

// newClient returns c, or a client of our own when c is nil; either way
// redirects are not followed (S3 redirects to another region's endpoint,
// and the signature would not be valid there).
func newClient(c *http.Client) *http.Client {
	return storage.NewHTTPClient(c, 8, func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse })
}

// do sends a signed request without a body.
func (b *Backend) do(ctx context.Context, method string, u *url.URL, h http.Header) (*http.Response, error) {
	req, err := storage.NewRequest(ctx, method, u, h)
	if err != nil {
		return nil, err
	}
	b.signer.sign(req, b.now(), emptyHash)
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, classify(err)
	}
	return resp, nil
}

// classify is storage.ClassifyTransport of a transport error without
// the URL the client puts in its errors: it is in the caller's context
// already.
func classify(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return storage.ClassifyTransport(err)
}

// s3Error is the body of S3's error answers.
type s3Error struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

// statusError is the error of an answer whose status is not the one
// asked for, with S3's error code and message when the body has them
// (a HEAD's answer has no body). Neither can hold the secret: S3 never
// sends it, and its StringToSign and CanonicalRequest are left out.
func statusError(resp *http.Response) error {
	kind := storage.ErrUnavailable
	// A refusal (401, 403, a bad key or signature, an expired token)
	// stays ErrUnavailable: every file of the library is read with the
	// server's own credentials, so it is this server's configuration that
	// is wrong, to be logged (a 502), not a client's mistake (a 403).
	if resp.StatusCode == http.StatusNotFound {
		kind = fs.ErrNotExist
	}
	msg := "S3 answered " + resp.Status
	var e s3Error
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if xml.Unmarshal(body, &e) == nil && e.Code != "" {
		switch e.Code {
		case "NoSuchKey", "NoSuchBucket":
			kind = fs.ErrNotExist
		case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken":
			msg = "check the library's access_key and secret_key (or the AWS_ environment): " + msg
		}
		msg += ": " + printable(e.Code, 64)
		if e.Message != "" {
			msg += ": " + printable(e.Message, 200)
		}
	}
	if r := resp.Header.Get("X-Amz-Bucket-Region"); r != "" && resp.StatusCode != http.StatusNotFound {
		// A HEAD in the wrong region gets a 301 or 400 without a body:
		// this header is all it says.
		msg += " (the bucket is in region " + printable(r, 64) + ")"
	}
	return fmt.Errorf("%w: %s", kind, msg)
}

// printable is s cut to at most n bytes of valid UTF-8, control
// characters dropped, for an error message.
func printable(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || r == utf8.RuneError {
			return -1
		}
		return r
	}, s)
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "…"
	}
	return s
}

// unavailable is an answer S3 cannot have meant.
func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", storage.ErrUnavailable, fmt.Sprintf(format, args...))
}
