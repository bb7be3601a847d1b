package journal

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	sqlite "modernc.org/sqlite"
)

// BenchmarkIngest measures durable group-committed ingestion: 64 concurrent
// callers (as with 64 in-flight webhooks), 1 KiB events with random-looking
// ids (as real ids and body hashes are: they scatter over the dedup index,
// which sequential test ids would not), 2 rule results and 2 jobs per event,
// each acknowledged only after the WAL fsync. events/s is the number to
// watch.
//
// The "fdatasync" variant enables Options.Fdatasync (process-wide, restored
// afterwards). The "provider-ids" variant marks the ids as the provider's
// (Stripe, Standard Webhooks), so each event also looks for copies on other
// sources and the rules that ran for them.
func BenchmarkIngest(b *testing.B) {
	b.Run("fsync", func(b *testing.B) { benchIngest(b, Options{}, false) })
	b.Run("fdatasync", func(b *testing.B) {
		defer sqlite.Fdatasync(sqlite.FdatasyncEnabled())
		benchIngest(b, Options{Fdatasync: true}, false)
	})
	b.Run("provider-ids", func(b *testing.B) { benchIngest(b, Options{}, true) })
}

func benchIngest(b *testing.B, opts Options, providerIDs bool) {
	s, _ := openTest(b, opts)
	eval := evalFor("overfilled", "slack", "email")
	var seq atomic.Int64
	ctx := context.Background()
	const callers = 64
	procs := max(1, testingGOMAXPROCS())
	b.SetParallelism((callers + procs - 1) / procs)
	b.ReportAllocs()
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ev := testEvent(hashID(int(seq.Add(1))))
			ev.ProviderID = providerIDs
			res, err := s.Ingest(ctx, ev, eval)
			if err != nil {
				b.Error(err)
				return
			}
			if len(res.Jobs) != 2 {
				b.Errorf("got %d jobs", len(res.Jobs))
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	if st := s.Stats(); st.Batches > 0 && st.Syncs > 0 {
		b.ReportMetric(float64(st.Ops)/float64(st.Batches), "ops/batch")
		b.ReportMetric(float64(st.Ops)/float64(st.Syncs), "ops/fsync")
	}
}
