package actions

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/payramd/payramd/config"
	"github.com/payramd/payramd/engine"
	"gopkg.in/yaml.v3"
)

// testFile is the file name problems are reported against.
const testFile = "rules.yaml"

// parseAction builds a config.Action from a YAML mapping the way the config
// loader does: the common keys are read and declared, the rest is left to
// the factory.
func parseAction(t *testing.T, name, src string) (*config.Action, *config.Problems) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		t.Fatalf("test YAML must be one mapping")
	}
	probs := &config.Problems{}
	f := config.NewFields(testFile, doc.Content[0], probs)
	a := &config.Action{
		Name:    name,
		Pos:     f.Pos(),
		Type:    f.String("type"),
		Timeout: f.Duration("timeout", 10*time.Second),
		Retry:   config.DefaultRetry,
		Enabled: f.Bool("enabled", true),
		Fields:  f,
	}
	f.Declare("retry")
	return a, probs
}

// compileYAML compiles one action and returns it with every problem found.
func compileYAML(t *testing.T, name, src string) (Action, *config.Problems) {
	t.Helper()
	a, probs := parseAction(t, name, src)
	got := Compile(&config.Config{Actions: []*config.Action{a}})
	return got[name], probs
}

// mustCompile compiles an action that must be valid (warnings allowed).
func mustCompile(t *testing.T, name, src string) Action {
	t.Helper()
	act, probs := compileYAML(t, name, src)
	if err := probs.Err(); err != nil {
		t.Fatalf("config errors:\n%v", err)
	}
	if act == nil {
		t.Fatalf("action %s not built", name)
	}
	return act
}

// testPayload is an over-filled PayRam payment whose overpayment is 5.05
// exactly, but 5.049999999999997 in float64.
const testPayload = `{"reference_id":"ref-42","status":"OVER_FILLED","amount":44.99,"filled_amount_in_usd":50.04,"customer_email":"buyer@example.com","note":"hello"}`

func testEvent(t *testing.T, raw string) *engine.Event {
	t.Helper()
	payload, err := engine.DecodeObject([]byte(raw))
	if err != nil {
		t.Fatalf("payload: %v", err)
	}
	return &engine.Event{
		ID:         "evt_123",
		Source:     "payram",
		Provider:   "payram",
		Type:       "payment.over_filled",
		ReceivedAt: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC),
		Headers:    map[string]string{"content-type": "application/json"},
		Payload:    payload,
		Raw:        []byte(raw),
	}
}

func testJob(t *testing.T, action string) *Job {
	t.Helper()
	return &Job{ID: "job_7f3a", Event: testEvent(t, testPayload), Rule: "overpaid", Action: action, Attempt: 1}
}

// assertNoSecrets fails when any secret appears in what an action shows the
// world: errors, outputs, rendered fields and problems.
func assertNoSecrets(t *testing.T, secrets []string, things ...any) {
	t.Helper()
	for _, th := range things {
		var texts []string
		switch v := th.(type) {
		case nil:
		case Result:
			if v.Err != nil {
				texts = append(texts, v.Err.Error(), fmt.Sprintf("%+v", v.Err))
			}
			texts = append(texts, v.Output)
		case *Rendered:
			if v != nil {
				for _, kv := range v.Fields {
					texts = append(texts, kv.Name+": "+kv.Value)
				}
			}
		case error:
			if v != nil {
				texts = append(texts, v.Error())
			}
		case *config.Problems:
			for _, p := range v.List {
				texts = append(texts, p.String())
			}
		case string:
			texts = append(texts, v)
		default:
			t.Fatalf("assertNoSecrets: cannot inspect %T", th)
		}
		for _, s := range secrets {
			for _, text := range texts {
				if strings.Contains(text, s) {
					t.Errorf("secret %q leaked in %T: %s", s, th, text)
				}
			}
		}
	}
}

// problemStrings lists problems as file:line:col: message.
func problemStrings(ps *config.Problems) []string {
	var out []string
	for _, p := range ps.List {
		out = append(out, p.String())
	}
	return out
}
