package actions

import (
	"context"
	"net/http"
	"strings"

	"github.com/payramd/payramd/config"
	"github.com/payramd/payramd/engine"
)

func init() { Register("slack", newSlack) }

var _ Action = (*Slack)(nil)

// Slack posts to an incoming webhook: `url`, `text`, and optionally
// `username`, `icon_emoji` and `channel` (which newer Slack apps ignore).
// The webhook URL is a credential, so it is never shown beyond its host.
type Slack struct {
	url       *engine.Template
	text      *engine.Template
	username  *engine.Template
	iconEmoji *engine.Template
	channel   *engine.Template
	textLinks []bool // per placeholder of text: in a link's address (slackLinkTargets)
}

func newSlack(c *config.Action) (Action, error) {
	s := newSpec(c)
	a := &Slack{
		url:       s.requiredTemplate("url", " (the incoming webhook URL Slack gave you, usually ${SLACK_WEBHOOK_URL})"),
		text:      s.requiredTemplate("text", " (the message, such as \"Overpaid {{ reference_id }}\")"),
		username:  s.template("username"),
		iconEmoji: s.template("icon_emoji"),
		channel:   s.template("channel"),
	}
	a.textLinks = slackLinkTargets(a.text)
	warnLiteralURL(s, "url", a.url)
	if u, ok := constant(a.url); ok {
		if err := checkHTTPURL(u); err != nil {
			// The URL is a secret: describe the problem, never quote it.
			s.errorf("url", "url: %v", err)
		}
	}
	if !s.ok() {
		return nil, errInvalid
	}
	return a, nil
}

// slackMessage is the incoming-webhook JSON body.
type slackMessage struct {
	Text      string `json:"text"`
	Username  string `json:"username,omitempty"`
	IconEmoji string `json:"icon_emoji,omitempty"`
	Channel   string `json:"channel,omitempty"`
}

func (a *Slack) build(j *Job) (string, *slackMessage, error) {
	env := j.Event.Env()
	u, err := render("url", a.url, env)
	if err != nil {
		return "", nil, err
	}
	u = strings.TrimSpace(u)
	if err := checkHTTPURL(u); err != nil {
		return "", nil, &safeError{msg: "url " + err.Error(), err: err}
	}
	m := &slackMessage{}
	escape := func(i int, s string) string {
		s = slackEscape(s)
		if i < len(a.textLinks) && a.textLinks[i] {
			s = strings.ReplaceAll(s, "|", "%7C")
		}
		return s
	}
	if m.Text, err = renderEscaped("text", a.text, env, escape); err != nil {
		return "", nil, err
	}
	for _, f := range []struct {
		name string
		t    *engine.Template
		dst  *string
	}{{"username", a.username, &m.Username}, {"icon_emoji", a.iconEmoji, &m.IconEmoji}, {"channel", a.channel, &m.Channel}} {
		if *f.dst, err = render(f.name, f.t, env); err != nil {
			return "", nil, err
		}
	}
	return u, m, nil
}

// slackEscape escapes what Slack reads as markup in message text: < and >
// delimit mentions (<!channel>) and links (<https://evil|payram.com>), &
// starts an entity. Applied to the event's values only, so that a
// customer-written name cannot ping a channel or disguise a link, while
// the merchant's own <!here> or <{{ url }}|Invoice> in the text still
// work. Slack shows the escaped characters as they were.
func slackEscape(s string) string {
	if !strings.ContainsAny(s, "&<>") {
		return s
	}
	return slackEscaper.Replace(s)
}

var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// slackLinkTargets reports, for each placeholder of a Slack text, whether it
// sits in the address of a link written in the template (<{{ url }}|label>):
// after a "<" and before the "|" or ">" that closes it. A "|" in such a
// value would end the address and let the event write the label
// ("https://evil|payram.com"), so it is sent as %7C. Only the template's
// own text is read: a value cannot open or close a link, being escaped.
func slackLinkTargets(t *engine.Template) []bool {
	lits := t.Literals()
	out := make([]bool, len(lits)-1)
	inAddr := false
	for i := range out {
		for _, c := range lits[i] {
			switch c {
			case '<':
				inAddr = true
			case '|', '>':
				inAddr = false
			}
		}
		out[i] = inAddr
	}
	return out
}

// Render shows the message; the URL only as scheme://host/….
func (a *Slack) Render(j *Job) (*Rendered, error) {
	u, m, err := a.build(j)
	if err != nil {
		return nil, err
	}
	out := &Rendered{Type: "slack", Fields: []KV{{"url", redactURL(u)}, {"text", m.Text}}}
	for _, kv := range []KV{{"username", m.Username}, {"icon_emoji", m.IconEmoji}, {"channel", m.Channel}} {
		if kv.Value != "" {
			out.Fields = append(out.Fields, kv)
		}
	}
	return out, nil
}

// Run posts the message once. Slack's 4xx answers (invalid_payload,
// no_text, action_prohibited, channel_not_found, channel_is_archived,
// no_service) are final; 429 (with Retry-After) and 5xx are retried.
func (a *Slack) Run(ctx context.Context, j *Job) Result {
	u, m, err := a.build(j)
	if err != nil {
		return permanent(err, "")
	}
	body, err := engine.EncodeJSON(m)
	if err != nil {
		return permanent(err, "")
	}
	r := &request{url: u, method: http.MethodPost, header: http.Header{}, body: body}
	r.header.Set("Content-Type", "application/json; charset=utf-8")
	r.header.Set("Idempotency-Key", j.ID)
	return doHTTP(ctx, r, nil, false, describeSlack)
}

// slackErrors explains Slack's error codes in words an operator can act on.
var slackErrors = map[string]string{
	"invalid_payload":                   "Slack could not read the message (check text and the optional fields)",
	"no_text":                           "the message text rendered empty",
	"action_prohibited":                 "the workspace admin does not allow this webhook to post",
	"channel_not_found":                 "the channel does not exist or the webhook cannot see it",
	"channel_is_archived":               "the channel is archived",
	"no_service":                        "the webhook URL was revoked or is wrong",
	"no_service_id":                     "the webhook URL is incomplete",
	"no_team":                           "the webhook URL is wrong",
	"team_disabled":                     "the Slack workspace is disabled",
	"invalid_token":                     "the webhook URL is invalid",
	"posting_to_general_channel_denied": "only admins may post to #general",
	"too_many_attachments":              "the message has too many attachments",
	"rollup_error":                      "Slack had an internal error",
}

// describeSlack quotes Slack's one-word answer with its meaning.
func describeSlack(r *response) string {
	code := strings.TrimSpace(r.body)
	if len(code) > 80 || strings.ContainsAny(code, " \n{<") {
		return ""
	}
	if why, ok := slackErrors[code]; ok {
		return code + ": " + why
	}
	return code
}
