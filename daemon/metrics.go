package daemon

import (
	"net/http"
	"sync/atomic"

	"github.com/payramd/payramd/journal"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are payramd's Prometheus series, on a private registry so tests
// can run several daemons in one process. Labels are bounded by the config
// (source, rule, action names) and fixed outcome words; never an event id.
type Metrics struct {
	reg            *prometheus.Registry
	Webhooks       *prometheus.CounterVec
	RuleMatches    *prometheus.CounterVec
	RuleErrors     *prometheus.CounterVec
	ActionAttempts *prometheus.CounterVec
	ActionDuration *prometheus.HistogramVec
	Jobs           *prometheus.GaugeVec
	ReloadOK       prometheus.Gauge
	ReloadTime     prometheus.Gauge
	Ingest         prometheus.Histogram

	// journal reads the open journal's writer counters at scrape time.
	journal atomic.Pointer[func() journal.WriterStats]
}

// declare creates the series of every source, rule and action of snap at
// zero, so that they exist before their first event: an alert on
// increase(payramd_webhooks_total{outcome="unavailable"}[5m]) or on a
// rule's errors sees the first one, where a series that appears at 1 shows
// no increase. Series of names a reload removed stay, frozen, until a
// restart.
func (m *Metrics) declare(snap *Snapshot) {
	for _, s := range snap.Config.Sources {
		for _, o := range []string{"accepted", "duplicate", "invalid_signature", "unavailable"} {
			m.Webhooks.WithLabelValues(s.Name, o)
		}
	}
	for _, r := range snap.Config.Rules {
		m.RuleMatches.WithLabelValues(r.Name)
		m.RuleErrors.WithLabelValues(r.Name)
	}
	for _, a := range snap.Config.Actions {
		for _, o := range []string{"succeeded", "retry", "failed", "dead"} {
			m.ActionAttempts.WithLabelValues(a.Name, o)
		}
		m.ActionDuration.WithLabelValues(a.Name)
	}
}

// journalStats returns the journal's counters, zero before it is open.
func (m *Metrics) journalStats() journal.WriterStats {
	if f := m.journal.Load(); f != nil {
		return (*f)()
	}
	return journal.WriterStats{}
}

// observeJournal makes the journal series read stats.
func (m *Metrics) observeJournal(stats func() journal.WriterStats) { m.journal.Store(&stats) }

// NewMetrics registers every series, with the Go runtime and process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		Webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payramd_webhooks_total", Help: "Webhook requests by source and outcome (accepted, duplicate, invalid_signature, forbidden, ...).",
		}, []string{"source", "outcome"}),
		RuleMatches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payramd_rule_matches_total", Help: "Events each rule matched.",
		}, []string{"rule"}),
		RuleErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payramd_rule_errors_total", Help: "Events for which a rule's condition failed at run time (the rule did not match).",
		}, []string{"rule"}),
		ActionAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "payramd_action_attempts_total", Help: "Action attempts by outcome (succeeded, retry, failed, dead).",
		}, []string{"action", "outcome"}),
		ActionDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "payramd_action_duration_seconds", Help: "Duration of action attempts.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"action"}),
		Jobs: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "payramd_jobs", Help: "Jobs by state (pending, running, dead).",
		}, []string{"state"}),
		ReloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "payramd_config_last_reload_successful", Help: "1 when the last config load or reload succeeded, 0 when it was refused (the previous config keeps running).",
		}),
		ReloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "payramd_config_last_reload_success_timestamp_seconds", Help: "Time of the last successful config load or reload.",
		}),
		Ingest: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "payramd_ingest_duration_seconds", Help: "Time to evaluate and durably journal an accepted webhook.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}),
	}
	m.reg.MustRegister(m.Webhooks, m.RuleMatches, m.RuleErrors, m.ActionAttempts, m.ActionDuration, m.Jobs, m.ReloadOK, m.ReloadTime, m.Ingest,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The group commit, read at scrape time: writes per commit and per
	// fsync show how well concurrent webhooks share the disk's flushes, and
	// a failed fsync (the journal refuses writes until a restart) is the
	// first thing to look at when /readyz fails.
	counter := func(name, help string, v func(journal.WriterStats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v(m.journalStats())) })
	}
	m.reg.MustRegister(
		counter("payramd_journal_writes_total", "Writes (ingests, job updates, claims) submitted to the journal.", func(s journal.WriterStats) uint64 { return s.Ops }),
		counter("payramd_journal_commits_total", "Group-commit transactions.", func(s journal.WriterStats) uint64 { return s.Batches }),
		counter("payramd_journal_fsyncs_total", "WAL fsyncs; each acknowledges every commit made before it began.", func(s journal.WriterStats) uint64 { return s.Syncs }),
		counter("payramd_journal_failed_commits_total", "Group commits that failed as a whole (disk full, I/O error, failed fsync).", func(s journal.WriterStats) uint64 { return s.Failures }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "payramd_journal_sync_failed", Help: "1 once a WAL fsync has failed: the journal refuses writes (webhooks get 503) until payramd restarts.",
		}, func() float64 {
			if m.journalStats().SyncFailed {
				return 1
			}
			return 0
		}),
	)
	for _, s := range []string{"pending", "running", "dead"} {
		m.Jobs.WithLabelValues(s)
	}
	return m
}

// Handler serves the text exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
