package daemon

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/payramd/payramd/engine"
)

func writeConfig(t *testing.T, path string, threshold int) {
	t.Helper()
	cfg := fmt.Sprintf(`server:
  data_dir: %s
sources:
  payram:
    provider: payram
    secret: k
actions:
  note:
    type: log
    message: "{{ reference_id }}"
rules:
  - name: big
    when: status == "FILLED" && amount > %d
    do: [note]
`, filepath.Join(filepath.Dir(path), "data"), threshold)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestReloadsRaceEvaluations swaps the config 100 times while events are
// evaluated concurrently (run with -race): each evaluation sees one whole
// snapshot, old or new, and never fails.
func TestReloadsRaceEvaluations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	writeConfig(t, path, 0)
	d, err := New(Options{Load: LoadOptions{Path: path}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ev := &engine.Event{ID: "e1", Source: "payram", Provider: "payram", Type: "payment.filled", ReceivedAt: time.Now(),
		Payload: map[string]any{"status": "FILLED", "reference_id": "r1", "amount": engine.MustDecimal("50")}}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var evals, matches int64
	var mu sync.Mutex
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, eval, err := d.evaluate(d.Snapshot(), ev)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				evals++
				matches += int64(len(eval.Matches))
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < 100; i++ {
		// Thresholds alternate below and above the amount (50).
		writeConfig(t, path, []int{10, 90}[i%2])
		if !d.Reload("test") {
			t.Fatalf("reload %d refused", i)
		}
	}
	close(stop)
	wg.Wait()
	if evals == 0 {
		t.Fatal("no evaluation ran")
	}
	if matches == 0 || matches == evals {
		t.Logf("evaluations %d, matches %d (both configs were seen: %v)", evals, matches, matches > 0 && matches < evals)
	}
	// The last config (threshold 90) is in force.
	if _, eval, _ := d.evaluate(d.Snapshot(), ev); len(eval.Matches) != 0 {
		t.Errorf("after the last reload the rule still matches amount 50 > 90")
	}
}
