package daemon

import (
	"net/http"

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
}

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
	for _, s := range []string{"pending", "running", "dead"} {
		m.Jobs.WithLabelValues(s)
	}
	return m
}

// Handler serves the text exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
