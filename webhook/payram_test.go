package webhook

import (
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/payramd/payramd/engine"
)

func dec(s string) engine.Decimal { return engine.MustDecimal(s) }

func bigNum(t *testing.T, s string) engine.BigNumber {
	t.Helper()
	b, err := engine.NewBigNumber(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPayramNormalize covers every shape PayRam has been documented to
// send, old and new.
func TestPayramNormalize(t *testing.T) {
	type want struct {
		typ    string
		fields map[string]any // expected payload values (Decimals compared by value)
		err    string         // substring of the 400 detail
	}
	cases := []struct {
		name   string
		method string
		query  url.Values
		header http.Header
		body   string
		want   want
	}{
		{
			name: "amounts as strings",
			body: `{"reference_id":"r1","status":"FILLED","amount":"25.00","filled_amount":"25.5","filled_amount_in_usd":"25.50"}`,
			want: want{typ: "payment.filled", fields: map[string]any{"status": "FILLED", "amount": dec("25.00"), "filled_amount": dec("25.5"), "filled_amount_in_usd": dec("25.50")}},
		},
		{
			name: "amounts as numbers, exact",
			body: `{"reference_id":"r1","status":"OVER_FILLED","amount":49.99,"filled_amount_in_usd":55.04}`,
			want: want{typ: "payment.over_filled", fields: map[string]any{"amount": dec("49.99"), "filled_amount_in_usd": dec("55.04")}},
		},
		{
			// An 18-decimal token amount has more digits than a Decimal
			// holds: it keeps every one, never rounded.
			name: "long amounts keep every digit",
			body: `{"reference_id":"r1","status":"FILLED","amount":"12.345678901234567890123","filled_amount":" 0.000000000000000000001 ","filled_amount_in_usd":123456789012345678901234,"amount_usd":"25.000000000000000000000"}`,
			want: want{typ: "payment.filled", fields: map[string]any{"amount": bigNum(t, "12.345678901234567890123"), "filled_amount": bigNum(t, "0.000000000000000000001"), "filled_amount_in_usd": bigNum(t, "123456789012345678901234"), "amount_usd": dec("25.00000000000000000")}},
		},
		{
			name: "a long amount must still be a number",
			body: `{"reference_id":"r1","status":"FILLED","amount":"12.345678901234567890123x"}`,
			want: want{err: "amount must be a decimal number"},
		},
		{
			name: "null stays nil",
			body: `{"reference_id":"r1","status":"OPEN","amount":"10","filled_amount_in_usd":null}`,
			want: want{typ: "payment.open", fields: map[string]any{"amount": dec("10"), "filled_amount_in_usd": nil}},
		},
		{
			name: "empty string is like null",
			body: `{"reference_id":"r1","status":"OPEN","filled_amount":""}`,
			want: want{typ: "payment.open", fields: map[string]any{"filled_amount": nil}},
		},
		{
			name: "non-numeric amount string",
			body: `{"reference_id":"r1","status":"OPEN","amount":"ten dollars"}`,
			want: want{err: "amount must be a decimal number"},
		},
		{
			name: "amount as a boolean",
			body: `{"reference_id":"r1","status":"OPEN","filled_amount_in_usd":true}`,
			want: want{err: "filled_amount_in_usd must be a number"},
		},
		{
			name: "status from payment_state, lower-case, CANCELED spelling",
			body: `{"reference_id":"r1","payment_state":"canceled","amount":"1"}`,
			want: want{typ: "payment.cancelled", fields: map[string]any{"status": "CANCELLED", "payment_state": "canceled"}},
		},
		{
			name: "status wins over payment_state",
			body: `{"reference_id":"r1","status":"filled","payment_state":"OPEN"}`,
			want: want{typ: "payment.filled", fields: map[string]any{"status": "FILLED"}},
		},
		{
			name: "unknown status accepted as is",
			body: `{"reference_id":"r1","status":"VERIFYING"}`,
			want: want{typ: "payment.verifying", fields: map[string]any{"status": "VERIFYING"}},
		},
		{
			name: "payout",
			body: `{"event_type":"payout.sent","payout_id":120,"status":"SENT","amount":"100","amount_usd":"99.98","tx_hash":"0xabc"}`,
			want: want{typ: "payout.sent", fields: map[string]any{"payout_id": dec("120"), "amount": dec("100"), "amount_usd": dec("99.98")}},
		},
		{
			name: "payout ping is an ordinary event",
			body: `{"event_type":"payout.ping"}`,
			want: want{typ: "payout.ping", fields: map[string]any{"event_type": "payout.ping"}},
		},
		{
			name: "missing reference_id",
			body: `{"status":"FILLED","amount":"1"}`,
			want: want{err: "reference_id"},
		},
		{
			name: "missing status",
			body: `{"reference_id":"r1"}`,
			want: want{err: "status"},
		},
		{
			name: "status not a string",
			body: `{"reference_id":"r1","status":3}`,
			want: want{err: "status must be a string"},
		},
		{
			name: "event_type not a string",
			body: `{"event_type":5}`,
			want: want{err: "event_type"},
		},
		{
			name: "trailing comma (PayRam's docs sample)",
			body: `{"reference_id":"r1","status":"FILLED",}`,
			want: want{err: "invalid JSON"},
		},
		{
			name: "not an object",
			body: `["reference_id"]`,
			want: want{err: "JSON object"},
		},
		{
			name: "empty body",
			body: ``,
			want: want{err: "empty body"},
		},
		{
			name:   "GET with query parameters",
			method: http.MethodGet,
			query:  url.Values{"reference_id": {"r9"}, "payment_state": {"FILLED"}, "filled_amount": {"18"}, "filled_amount_in_usd": {"18.00"}, "confirmation_current": {"3"}, "currency": {"USDC"}},
			want:   want{typ: "payment.filled", fields: map[string]any{"status": "FILLED", "filled_amount": dec("18"), "filled_amount_in_usd": dec("18.00"), "confirmation_current": dec("3"), "currency": "USDC"}},
		},
		{
			name:   "GET with a long amount",
			method: http.MethodGet,
			query:  url.Values{"reference_id": {"r9"}, "payment_state": {"FILLED"}, "filled_amount": {"1.000000000000000000001"}, "confirmation_current": {"123456789012345678901"}},
			want:   want{typ: "payment.filled", fields: map[string]any{"filled_amount": bigNum(t, "1.000000000000000000001"), "confirmation_current": bigNum(t, "123456789012345678901")}},
		},
		{
			name:   "GET with a JSON body",
			method: http.MethodGet,
			body:   `{"reference_id":"r1","payment_state":"PARTIALLY_FILLED","filled_amount":18}`,
			want:   want{typ: "payment.partially_filled", fields: map[string]any{"filled_amount": dec("18")}},
		},
		{
			name:   "form body",
			header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}},
			body:   `reference_id=r1&status=FILLED&amount=5.05`,
			want:   want{typ: "payment.filled", fields: map[string]any{"amount": dec("5.05")}},
		},
		{
			name: "form body without form content type is not JSON",
			body: `reference_id=r1&status=FILLED`,
			want: want{err: "invalid JSON"},
		},
	}
	p := &payram{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := c.method
			if m == "" {
				m = http.MethodPost
			}
			h := c.header
			if h == nil {
				h = http.Header{}
			}
			n, err := p.Normalize(&Request{Source: "payram", Method: m, Query: c.query, Header: h, Body: []byte(c.body)})
			if c.want.err != "" {
				if !errors.Is(err, ErrInvalidPayload) || !strings.Contains(err.Error(), c.want.err) {
					t.Fatalf("error %v, want invalid payload containing %q", err, c.want.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n.Type != c.want.typ {
				t.Errorf("type %q, want %q", n.Type, c.want.typ)
			}
			for k, w := range c.want.fields {
				got, ok := n.Payload[k]
				if !ok {
					t.Errorf("%s missing", k)
					continue
				}
				if wd, isDec := w.(engine.Decimal); isDec {
					gd, ok := got.(engine.Decimal)
					if !ok || gd.Cmp(wd) != 0 || gd.String() != wd.String() {
						t.Errorf("%s = %#v, want decimal %s", k, got, wd)
					}
					continue
				}
				if got != w {
					t.Errorf("%s = %#v, want %#v", k, got, w)
				}
			}
		})
	}
}

// TestPayramGETOverHTTP sends the old-style GET with query parameters
// through the listener, where it gets a default id from the query.
func TestPayramGETOverHTTP(t *testing.T) {
	tab := compile(t, [2]string{"payram", "provider: payram\nsecret: " + newSecret + "\n"})
	e := newEnv(t, tab)
	res := e.do(http.MethodGet, "/webhooks/payram?reference_id=r1&payment_state=CANCELED", http.Header{"Api-Key": {newSecret}}, nil)
	if res.status != 200 {
		t.Fatalf("status %d %s", res.status, res.raw)
	}
	ev := e.journal.last()
	if ev.Type != "payment.cancelled" || ev.Payload["status"] != "CANCELLED" || len(ev.Raw) != 0 {
		t.Fatalf("event %+v", ev)
	}
	res2 := e.do(http.MethodGet, "/webhooks/payram?reference_id=r2&payment_state=CANCELED", http.Header{"Api-Key": {newSecret}}, nil)
	if res2.body["status"] != "accepted" || res2.body["id"] == res.body["id"] {
		t.Fatalf("second GET with other parameters: %s", res2.raw)
	}
	// A GET may also carry the JSON body, signed like a POST.
	body := []byte(`{"reference_id":"r3","payment_state":"FILLED","filled_amount":18}`)
	res3 := e.do(http.MethodGet, "/webhooks/payram", payramHeader(newSecret, body), body)
	if res3.status != 200 || e.journal.last().Type != "payment.filled" || string(e.journal.last().Raw) != string(body) {
		t.Fatalf("GET with JSON body: %d %s", res3.status, res3.raw)
	}
	// A GET with neither is not a delivery.
	if res4 := e.do(http.MethodGet, "/webhooks/payram", http.Header{"Api-Key": {newSecret}}, nil); res4.status != 400 {
		t.Fatalf("empty GET: %d %s", res4.status, res4.raw)
	}
}

// TestPayramSchema makes sure the schema lists the fields rules use most.
func TestPayramSchema(t *testing.T) {
	tab := compile(t, [2]string{"payram", "provider: payram\nsecret: x\n"}, [2]string{"gh", "provider: hmac\nsecret: x\nheader: X-Sig\n"})
	s := tab.Schema("payram")
	if s == nil {
		t.Fatal("payram has no schema")
	}
	f := s.Fields()
	for k, want := range map[string]FieldType{"reference_id": String, "status": String, "filled_amount_in_usd": Decimal, "amount_usd": Decimal, "event_type": String, "payment_info": List} {
		if f[k] != want {
			t.Errorf("%s: %q, want %q", k, f[k], want)
		}
	}
	if tab.Schema("gh") != nil || tab.Schema("nope") != nil {
		t.Error("schema for a provider without known fields")
	}
}

// TestProviderSamples verifies and normalizes the sample deliveries kept
// under testdata/providers, the same files the docs point merchants to.
func TestProviderSamples(t *testing.T) {
	files, _ := filepath.Glob("../testdata/providers/payram-*.json")
	if len(files) == 0 {
		t.Skip("no samples")
	}
	p := &payram{secrets: [][]byte{[]byte(newSecret)}}
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Normalize(&Request{Method: "POST", Header: http.Header{}, Body: body})
		invalid := strings.Contains(filepath.Base(f), "invalid")
		if invalid != (err != nil) {
			t.Errorf("%s: error %v", f, err)
		}
	}
}

// A long PayRam amount is forwarded and journaled with every digit.
func TestPayramLongAmountKeepsText(t *testing.T) {
	n, err := (&payram{}).Normalize(&Request{Source: "payram", Method: http.MethodPost, Header: http.Header{},
		Body: []byte(`{"reference_id":"r1","status":"FILLED","amount":"12.345678901234567890123"}`)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := engine.EncodeJSON(n.Payload)
	if err != nil || !strings.Contains(string(b), `"amount":12.345678901234567890123,`) {
		t.Errorf("encoded %s, %v; want the amount's every digit", b, err)
	}
	if s, err := engine.FormatValue(n.Payload["amount"]); err != nil || s != "12.345678901234567890123" {
		t.Errorf("rendered %q, %v", s, err)
	}
}
