package journal

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkIngest measures durable group-committed ingestion: 64 concurrent
// callers (as with 64 in-flight webhooks), 1 KiB events, 2 rule results and
// 2 jobs per event, synchronous=FULL. events/s is the number to watch.
func BenchmarkIngest(b *testing.B) {
	s, _ := openTest(b, Options{})
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
			ev := testEvent(idOf("bench", int(seq.Add(1))))
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
	if st := s.Stats(); st.Batches > 0 {
		b.ReportMetric(float64(st.Ops)/float64(st.Batches), "ops/batch")
		b.ReportMetric(float64(dbg.exec.Microseconds())/float64(st.Ops), "exec-µs/op")
		b.ReportMetric(float64(dbg.commit.Microseconds())/float64(st.Batches), "commit-µs/batch")
		dbg.exec, dbg.commit = 0, 0
	}
}
