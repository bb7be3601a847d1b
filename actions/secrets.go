package actions

import (
	"strings"

	"github.com/payramd/payramd/config"
	"github.com/payramd/payramd/engine"
)

// Warnings about credentials written in the config itself rather than
// taken from the environment (see config.Problems.WarnLiteralSecret): the
// password of a url's user:password@, a Slack webhook URL, a credential
// header and a credential variable of exec's env. The signing secret and
// the SMTP password are config.Secret fields, which config warns about.
//
// Text counts as written in the config when it is neither from a ${VAR}
// (config.Scalar.FromEnv: any part of the value from the environment
// keeps it quiet) nor inside a placeholder reading the event, which is
// data, not a secret of the config; and it holds a letter or a digit.

// literal is the text of a template's value, with which of its bytes are
// written in the config: not inside a placeholder (a constant {{ "x" }}
// is written in the config too).
type literal struct {
	sc   *config.Scalar
	text string
	ph   []bool // per byte of text: inside a placeholder reading the event
}

func newLiteral(sc *config.Scalar, t *engine.Template) *literal {
	l := &literal{sc: sc, text: sc.Value, ph: make([]bool, len(sc.Value))}
	for _, p := range t.Placeholders() {
		if p.Constant {
			continue
		}
		for i := max(p.Offset, 0); i < min(p.End, len(l.ph)); i++ {
			l.ph[i] = true
		}
	}
	return l
}

// written reports whether text[start:end] is a secret written in the
// config: no part of the value is from the environment, and the range
// holds a letter or digit outside the event's placeholders.
func (l *literal) written(start, end int) bool {
	if start >= end || l.sc.FromEnv(0, len(l.text)) {
		return false
	}
	var b strings.Builder
	for i := start; i < end; i++ {
		if !l.ph[i] {
			b.WriteByte(l.text[i])
		}
	}
	return config.HasText(b.String())
}

// index is the offset of the first byte of text, from byte from on, that is
// one of chars and not inside a placeholder (a "/" in {{ a ?? "/" }} is
// code); -1 when there is none.
func (l *literal) index(from int, chars string) int {
	for i := from; i < len(l.text); i++ {
		if !l.ph[i] && strings.IndexByte(chars, l.text[i]) >= 0 {
			return i
		}
	}
	return -1
}

// warnLiteralURL warns about a url (of http or slack) that carries a secret
// written in the config: the password of user:password@, or the path of a
// Slack webhook (hooks.slack.com/services/…, which is the credential).
// Only one warning per url.
func warnLiteralURL(s *spec, key string, t *engine.Template) {
	if t == nil {
		return
	}
	sc := s.f.Scalar(key)
	if sc == nil {
		return
	}
	l := newLiteral(sc, t)
	// The authority runs from after "scheme://" to the first "/", "?" or "#".
	i := strings.Index(l.text, "://")
	if i < 0 || l.ph[i] {
		return
	}
	hostStart := i + 3
	hostEnd := l.index(hostStart, "/?#")
	if hostEnd < 0 {
		hostEnd = len(l.text)
	}
	if at := strings.LastIndexByte(l.text[hostStart:hostEnd], '@'); at >= 0 && !l.ph[hostStart+at] {
		user := hostStart
		hostStart += at + 1
		if colon := strings.IndexByte(l.text[user:hostStart-1], ':'); colon >= 0 && l.written(user+colon+1, hostStart-1) {
			s.f.Problems().WarnLiteralSecret(sc.AtOffset(user+colon+1), key+": the password in this URL", key+": https://user:${ERP_PASSWORD}@…", "")
			return
		}
	}
	host := strings.ToLower(strings.TrimSpace(l.text[hostStart:hostEnd]))
	if host != "hooks.slack.com" && host != "hooks.slack-gov.com" {
		return
	}
	pathEnd := l.index(hostEnd, "?#")
	if pathEnd < 0 {
		pathEnd = len(l.text)
	}
	path := l.text[hostEnd:pathEnd]
	for _, p := range []string{"/services/", "/workflows/", "/triggers/"} {
		if strings.HasPrefix(path, p) && l.written(hostEnd+len(p), pathEnd) {
			s.f.Problems().WarnLiteralSecret(sc.AtOffset(hostEnd+len(p)), key+": this Slack webhook URL", key+": ${SLACK_WEBHOOK_URL}", "")
			return
		}
	}
}

// warnLiteralCredentials warns about each entry of headers: or env: whose
// name says it holds a credential and whose value is written in the
// config. For Authorization and Proxy-Authorization, a leading scheme word
// (Bearer, Basic, Token …) is not the secret: "Bearer {{ token }}" is
// quiet, "Bearer abc" is not.
func warnLiteralCredentials(s *spec, key string, entries []namedTemplate) {
	for _, e := range entries {
		if e.sc == nil || e.value == nil || !credentialName(e.name) {
			continue
		}
		l := newLiteral(e.sc, e.value)
		start := 0
		auth := strings.EqualFold(e.name, "Authorization") || strings.EqualFold(e.name, "Proxy-Authorization")
		if auth {
			start = len(l.text) - len(strings.TrimLeft(l.text, " "))
			if sp := strings.IndexByte(l.text[start:], ' '); sp > 0 && !l.ph[start] {
				start += sp + 1
			}
		}
		if !l.written(start, len(l.text)) {
			continue
		}
		instead := e.name + ": \"${" + credentialEnv(e.name) + "}\""
		if auth {
			instead = e.name + ": \"Bearer ${ERP_TOKEN}\""
		}
		s.f.Problems().WarnLiteralSecret(e.sc.AtOffset(start), key+": the value of "+e.name, instead, "")
	}
}

// credentialName reports whether a header or environment variable name
// says its value is a credential: Authorization, Proxy-Authorization, one
// ending in Token, Secret, Password, Passwd or ApiKey, or in Key after API,
// Access, Secret, Private or Auth (X-API-Key, AWS_SECRET_ACCESS_KEY, but
// not Idempotency-Key).
func credentialName(name string) bool {
	words := strings.FieldsFunc(strings.ToLower(name), func(r rune) bool { return r == '-' || r == '_' || r == '.' })
	if len(words) == 0 {
		return false
	}
	switch last := words[len(words)-1]; last {
	case "authorization", "token", "secret", "password", "passwd", "apikey":
		return true
	case "key":
		if len(words) > 1 {
			switch words[len(words)-2] {
			case "api", "access", "secret", "private", "auth":
				return true
			}
		}
	}
	return false
}

// credentialEnv suggests a variable for a credential header or variable:
// X-Api-Key → API_KEY, ERP_TOKEN → ERP_TOKEN.
func credentialEnv(name string) string {
	v := config.EnvName(name)
	if t := strings.TrimPrefix(v, "X_"); t != "" {
		return t
	}
	return v
}
