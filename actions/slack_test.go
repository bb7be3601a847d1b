package actions

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// slackPath is the secret part of an incoming-webhook URL.
const slackPath = "/services/T0001/B0002/s3cr3tW3bh00kT0k3n"

func TestSlackPostsMessage(t *testing.T) {
	s := newSink(t, answer(200, "ok"))
	act := mustCompile(t, "ops-slack", `
type: slack
url: `+s.URL+slackPath+`
text: "Overpaid {{ reference_id }} by {{ money(filled_amount_in_usd - amount) }} USD"
username: payramd
icon_emoji: ":moneybag:"
channel: "#payments"
`)
	j := testJob(t, "ops-slack")
	res := act.Run(context.Background(), j)
	if res.Err != nil {
		t.Fatalf("Run: %v", res.Err)
	}
	r, body := s.last(t)
	if r.Method != "POST" || r.URL.Path != slackPath || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Errorf("request %s %s %s", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	want := map[string]any{"text": "Overpaid ref-42 by 5.05 USD", "username": "payramd", "icon_emoji": ":moneybag:", "channel": "#payments"}
	if len(got) != len(want) {
		t.Errorf("body %s, want exactly %v", body, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}

	rd, err := act.Render(j)
	if err != nil {
		t.Fatal(err)
	}
	if !hasField(rd, "url", s.URL+"/…") || !hasField(rd, "text", "Overpaid ref-42 by 5.05 USD") {
		t.Errorf("render %+v", rd.Fields)
	}
	assertNoSecrets(t, []string{"s3cr3tW3bh00kT0k3n"}, res, rd)
}

// slackTextFor posts a Slack action with this text template for an event
// whose note is note, and returns the text Slack received.
func slackTextFor(t *testing.T, text, note string) string {
	t.Helper()
	s := newSink(t, answer(200, "ok"))
	act := mustCompile(t, "a", "type: slack\nurl: "+s.URL+slackPath+"\ntext: '"+text+"'\n")
	j := testJob(t, "a")
	j.Event.Payload["note"] = note
	if res := act.Run(context.Background(), j); res.Err != nil {
		t.Fatal(res.Err)
	}
	_, body := s.last(t)
	var got struct{ Text string }
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	return got.Text
}

// TestSlackEscapesEventValues: a customer-written value cannot ping the
// channel or disguise a link (found by a security review); the merchant's
// own markup in the text is kept.
func TestSlackEscapesEventValues(t *testing.T) {
	got := slackTextFor(t, "<!here> Overpaid by {{ note }} & more", "<!channel> approve at <https://evil.example/login|payram.com/admin> & now")
	want := "<!here> Overpaid by &lt;!channel&gt; approve at &lt;https://evil.example/login|payram.com/admin&gt; &amp; now & more"
	if got != want {
		t.Errorf("text\n got %q\nwant %q", got, want)
	}
}

// TestSlackLinkAddressKeepsItsLabel: in <{{ url }}|Invoice> a "|" in the
// event's address would end it and let the event write the label; it is
// sent as %7C there, and left alone in plain text (found by a review).
func TestSlackLinkAddressKeepsItsLabel(t *testing.T) {
	got := slackTextFor(t, "<{{ note }}|Invoice> for {{ note }}", "https://pay.example/i?a=1&b=2|Verify your payram.com account")
	want := "<https://pay.example/i?a=1&amp;b=2%7CVerify your payram.com account|Invoice> for https://pay.example/i?a=1&amp;b=2|Verify your payram.com account"
	if got != want {
		t.Errorf("text\n got %q\nwant %q", got, want)
	}
}

func TestSlackOptionalFieldsOmitted(t *testing.T) {
	s := newSink(t, answer(200, "ok"))
	act := mustCompile(t, "a", "type: slack\nurl: "+s.URL+slackPath+"\ntext: hi\n")
	if res := act.Run(context.Background(), testJob(t, "a")); res.Err != nil {
		t.Fatal(res.Err)
	}
	if _, body := s.last(t); string(body) != `{"text":"hi"}` {
		t.Errorf("body %s", body)
	}
}

func TestSlackClassifiesAnswers(t *testing.T) {
	tests := []struct {
		status    int
		body      string
		header    []string
		retryable bool
		after     time.Duration
		errHas    string
	}{
		{400, "invalid_payload", nil, false, 0, "invalid_payload"},
		{400, "no_text", nil, false, 0, "no_text"},
		{403, "action_prohibited", nil, false, 0, "action_prohibited"},
		{404, "channel_not_found", nil, false, 0, "channel_not_found"},
		{410, "channel_is_archived", nil, false, 0, "channel_is_archived"},
		{429, "rate_limited", []string{"Retry-After", "30"}, true, 30 * time.Second, "429"},
		{500, "rollup_error", nil, true, 0, "rollup_error"},
		{503, "<html>down</html>", nil, true, 0, "503"},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			s := newSink(t, answer(tt.status, tt.body, tt.header...))
			act := mustCompile(t, "a", "type: slack\nurl: "+s.URL+slackPath+"\ntext: hi\n")
			res := act.Run(context.Background(), testJob(t, "a"))
			if res.Err == nil {
				t.Fatal("no error")
			}
			if res.Retryable != tt.retryable || res.RetryAfter != tt.after {
				t.Errorf("retryable=%v after=%v, want %v %v (%v)", res.Retryable, res.RetryAfter, tt.retryable, tt.after, res.Err)
			}
			if !strings.Contains(res.Err.Error(), tt.errHas) {
				t.Errorf("error %q does not mention %q", res.Err, tt.errHas)
			}
			assertNoSecrets(t, []string{"s3cr3tW3bh00kT0k3n"}, res)
		})
	}
}
