package actions

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-resty/resty/v2"
)

// userAgent identifies payramd to receivers, who may filter or allow-list on it.
const userAgent = "payramd"

// maxRedirects bounds follow_redirects: a loop must not eat the timeout.
const maxRedirects = 10

// sharedClient is the one resty client behind every http and slack action,
// so that connections to the same receiver are reused across jobs. Resty's
// own retries are off (RetryCount 0): its rules retry a POST on any
// transport error without regard to idempotency and ignore 5xx, and the
// durable job queue owns retries anyway.
var sharedClient = sync.OnceValue(func() *resty.Client {
	transport := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2: true,
		// Resty's default keeps GOMAXPROCS+1 idle connections per host, so
		// a burst of jobs to one receiver opens and closes connections.
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
	}
	c := resty.New().
		SetTransport(transport).
		SetRetryCount(0).
		SetLogger(slogAdapter{}).
		SetHeader("User-Agent", userAgent).
		SetRedirectPolicy(resty.RedirectPolicyFunc(redirectPolicy))
	return c
})

type followKey struct{}

// errRedirectRefused is a redirect follow_redirects will not take; the
// receiver's configuration decides it, so retrying does not help.
var errRedirectRefused = errors.New("not following a redirect")

// withFollow marks a request's context with whether redirects are
// followed: the policy is the action's, but the client is shared.
func withFollow(ctx context.Context, follow bool) context.Context {
	return context.WithValue(ctx, followKey{}, follow)
}

// redirectPolicy returns the 3xx response itself unless the action asked
// for follow_redirects: a webhook receiver that redirects is usually
// misconfigured, and following a redirect turns a POST into a GET. Even
// then it follows only redirects to the same scheme, host and port: Go
// would resend the body, the signature and every custom header (an API
// key) to wherever the Location points, and a Referer with the original
// URL's query (found by a security review). The Referer is dropped.
func redirectPolicy(req *http.Request, via []*http.Request) error {
	if follow, _ := req.Context().Value(followKey{}).(bool); !follow {
		return http.ErrUseLastResponse
	}
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	if first := via[0]; req.Method != first.Method {
		// Go follows a 301, 302 or 303 answering a POST as a GET without
		// the body, as browsers do: the receiver would get nothing it can
		// use and the job would succeed (found by a QA pass).
		status := "redirect"
		if req.Response != nil {
			status = strconv.Itoa(req.Response.StatusCode)
		}
		return fmt.Errorf("%w: following the %s would send a %s without the body instead of the %s; point url at the address it redirects to",
			errRedirectRefused, status, req.Method, first.Method)
	}
	from := via[0].URL
	if origin(req.URL) != origin(from) {
		return fmt.Errorf("%w to %s: follow_redirects stays on %s://%s, so that the body, signature and headers go nowhere else",
			errRedirectRefused, redactURL(req.URL.String()), from.Scheme, from.Host)
	}
	req.Header.Del("Referer")
	return nil
}

// origin is a URL's scheme, host and port as a redirect check compares
// them: lower case, no trailing dot, the scheme's default port filled in.
func origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	return scheme + "://" + net.JoinHostPort(strings.TrimSuffix(strings.ToLower(u.Hostname()), "."), port)
}

// urlPattern finds URLs in resty's log lines.
var urlPattern = regexp.MustCompile(`(?i)\b(https?)://([^/\s"'?#]+)[^\s"']*`)

// slogAdapter routes resty's logger through slog with every URL cut to its
// scheme and host: resty logs full URLs, and a Slack webhook URL is a secret.
type slogAdapter struct{}

func (slogAdapter) Errorf(format string, v ...any) { restyLog(slog.LevelError, format, v) }
func (slogAdapter) Warnf(format string, v ...any)  { restyLog(slog.LevelWarn, format, v) }
func (slogAdapter) Debugf(format string, v ...any) { restyLog(slog.LevelDebug, format, v) }

func restyLog(level slog.Level, format string, v []any) {
	slog.Default().Log(context.Background(), level, redactURLs(fmt.Sprintf(format, v...)), "component", "resty")
}

// redactURLs cuts every http(s) URL in s to its scheme and host.
func redactURLs(s string) string { return urlPattern.ReplaceAllString(s, "$1://$2/…") }

// response is what an HTTP attempt got back, with the body bounded.
type response struct {
	status     int
	statusText string // "503 Service Unavailable"
	line       string // "HTTP/1.1 503 Service Unavailable"
	header     http.Header
	body       string // the first bytes only
}

// send performs one request on the shared client. It never returns an error
// that quotes the URL: transport errors are rewritten to name only the
// method and scheme+host, so that a secret in the path cannot leak into the
// job record or the logs.
func send(ctx context.Context, method, target string, header http.Header, body []byte, follow bool) (*response, error) {
	req := sharedClient().R().
		SetContext(withFollow(ctx, follow)).
		SetDoNotParseResponse(true)
	for name, values := range header {
		for _, v := range values {
			req.Header.Add(name, v)
		}
	}
	if body != nil {
		req.SetBody(body)
	}
	resp, err := req.Execute(method, target)
	if err != nil {
		if resp != nil && resp.RawResponse != nil {
			resp.RawResponse.Body.Close()
		}
		return nil, transportError(ctx, method, target, err)
	}
	raw := resp.RawResponse
	defer raw.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(raw.Body, MaxOutput))
	// Drain a little more so the connection can be reused; a receiver that
	// streams megabytes back is not worth waiting for.
	_, _ = io.Copy(io.Discard, io.LimitReader(raw.Body, 64<<10))
	return &response{
		status:     raw.StatusCode,
		statusText: raw.Status,
		line:       raw.Proto + " " + raw.Status,
		header:     raw.Header,
		body:       string(b),
	}, nil
}

// output is the attempt record for a response: status line and first bytes.
func (r *response) output() string {
	if r.body == "" {
		return r.line
	}
	return r.line + "\n" + r.body
}

// safeError carries a message we composed (without the URL) and the cause
// for errors.Is/As, skipping the *url.Error layer that prints the URL.
type safeError struct {
	msg string
	err error
}

func (e *safeError) Error() string { return e.msg }
func (e *safeError) Unwrap() error { return e.err }

// transportError rewrites a failed request's error without its URL and
// decides whether the failure is worth another attempt.
func transportError(ctx context.Context, method, target string, err error) error {
	cause := err
	var ue *url.Error
	if errors.As(err, &ue) {
		cause = ue.Err
	}
	where := method + " " + redactURL(target)
	if ctx.Err() != nil || errors.Is(cause, context.DeadlineExceeded) {
		c := ctx.Err()
		if c == nil {
			c = cause
		}
		if errors.Is(c, context.DeadlineExceeded) {
			return &timeoutError{what: where + ": no answer in time", err: c}
		}
		return &safeError{msg: where + ": cancelled: " + c.Error(), err: c}
	}
	msg := cause.Error()
	// Belt and braces: no inner error should quote the URL, but the path
	// is the secret of a Slack webhook, so make sure.
	if u, perr := url.Parse(target); perr == nil && len(u.Path) > 1 {
		msg = strings.ReplaceAll(msg, target, redactURL(target))
		msg = strings.ReplaceAll(msg, u.Path, "/…")
	}
	return &safeError{msg: where + ": " + msg, err: cause}
}

// retryableTransport tells failures that another attempt may cure (timeouts,
// refused or reset connections, DNS) from ones it cannot (a certificate
// that does not verify, a malformed URL).
func retryableTransport(err error) bool {
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		verify           *tls.CertificateVerificationError
		recordHeader     tls.RecordHeaderError
	)
	switch {
	case errors.Is(err, errRedirectRefused):
		return false
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return true
	case errors.As(err, &unknownAuthority), errors.As(err, &hostname), errors.As(err, &invalid), errors.As(err, &verify):
		return false
	case errors.As(err, &recordHeader):
		// TLS spoken to a plain-text port: a configuration mistake.
		return false
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	}
	var dnsErr *net.DNSError
	var netErr net.Error
	var opErr *net.OpError
	switch {
	case errors.As(err, &dnsErr), errors.As(err, &opErr):
		return true
	case errors.As(err, &netErr) && netErr.Timeout():
		return true
	}
	if strings.Contains(err.Error(), "unsupported protocol scheme") || strings.Contains(err.Error(), "redirects") {
		return false
	}
	// Unknown transport failures are most often the network's; the retry
	// budget bounds the cost of being wrong.
	return true
}

// classifyStatus decides an HTTP answer: ok when expected (any 2xx when
// expect is empty); otherwise 408, 429 and 5xx are worth another attempt,
// honoring Retry-After, and every other status (other 4xx, an unfollowed
// 3xx) is final, because the same request will get the same answer.
func classifyStatus(r *response, expect []int) (ok, again bool, after time.Duration) {
	if len(expect) == 0 {
		if r.status >= 200 && r.status < 300 {
			return true, false, 0
		}
	} else {
		for _, c := range expect {
			if c == r.status {
				return true, false, 0
			}
		}
	}
	switch {
	case r.status == http.StatusRequestTimeout, r.status == http.StatusTooManyRequests, r.status >= 500:
		return false, true, retryAfter(r.header.Get("Retry-After"), time.Now())
	}
	return false, false, 0
}

// maxRetryAfter caps what a receiver may ask for: a far-future Retry-After
// (a misconfigured proxy, a date in 2099) must not park a job for years,
// where it never runs and never becomes dead.
const maxRetryAfter = 24 * time.Hour

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date,
// capped at maxRetryAfter.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, int64(maxRetryAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, maxRetryAfter).Round(time.Second)
		}
	}
	return 0
}
