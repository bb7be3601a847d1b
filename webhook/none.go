package webhook

import (
	"net/http"
	"time"

	"github.com/payramd/payramd/config"
)

func init() { Register("none", newNone) }

// none verifies nothing. It exists for senders that cannot sign (and for
// trying payramd out), and must be spelled out in the config so that an
// unverified endpoint is never the result of a forgotten line.
type none struct{}

var _ Provider = none{}

func newNone(src *config.Source) (Provider, error) {
	path := src.Path
	if path == "" {
		path = "/webhooks/" + src.Name
	}
	src.Fields.Warnf("provider", "provider none verifies nothing: anyone who can reach %s can post events to source %q (restrict it with allow_ips, or use a signing provider)", path, src.Name)
	if len(src.Secrets) > 0 {
		src.Fields.Warnf("secret", "provider none ignores the secret")
	}
	return none{}, nil
}

func (none) Verify(*Request) error { return nil }

func (none) Sign(http.Header, []byte, time.Time) error { return nil }

// Normalize decodes a JSON object; meta.type is its event or type string.
func (none) Normalize(r *Request) (*Normalized, error) {
	payload, err := decodeObject(r.Body)
	if err != nil {
		return nil, err
	}
	return &Normalized{Type: genericType(payload), Payload: payload}, nil
}
