package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/payramd/payramd/config"
	"github.com/payramd/payramd/engine"
	"github.com/payramd/payramd/journal"
	"github.com/payramd/payramd/webhook"
)

// Options configure a daemon.
type Options struct {
	Load   LoadOptions
	Logger *slog.Logger
	// Notify receives systemd state changes; nil ignores them.
	Notify Notifier
	// Version is reported by the admin API.
	Version string
}

// Daemon is a running payramd.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	metrics *Metrics
	snap    atomic.Pointer[Snapshot]
	store   journal.Store
	handler *webhook.Handler
	notify  Notifier
	// server holds the server: settings of the first load. The listen
	// addresses and the data dir need a restart to change; for the
	// settings that follow reloads, read the current snapshot instead.
	server config.Server

	wake   chan struct{}
	events *eventCache
	pool   *pool

	reloadMu   sync.Mutex
	lastReload reloadStatus

	publicAddr, adminAddr atomic.Value                         // net.Addr once listening
	certs                 atomic.Pointer[webhook.CertReloader] // nil: TLS off (or not started)
}

type reloadStatus struct {
	OK       bool      `json:"ok"`
	At       time.Time `json:"at"`
	Trigger  string    `json:"trigger"`
	Problems []string  `json:"problems,omitempty"`
	// certsLoaded: the reload loaded new TLS files, so a SIGHUP need not
	// read them again.
	certsLoaded bool
}

// New loads the config. A config error is returned as a *config.Error
// listing every problem.
func New(o Options) (*Daemon, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Notify == nil {
		o.Notify = nopNotifier{}
	}
	d := &Daemon{opts: o, log: o.Logger, metrics: NewMetrics(), notify: o.Notify, wake: make(chan struct{}, 1), events: newEventCache(8192, 64<<20)}
	snap, probs := Load(o.Load)
	for _, p := range probs.List {
		if p.Warning {
			d.log.Warn("config warning", "problem", p.String())
		}
	}
	if snap == nil {
		d.metrics.ReloadOK.Set(0)
		return nil, probs.Err()
	}
	if snap.Config.Embedded {
		d.log.Warn("no config file found: running the built-in example config (write rules.yaml, or pass -c FILE)")
	}
	d.snap.Store(snap)
	d.server = snap.Config.Server
	d.metrics.declare(snap)
	d.metrics.ReloadOK.Set(1)
	d.metrics.ReloadTime.Set(float64(time.Now().Unix()))
	d.lastReload = reloadStatus{OK: true, At: time.Now(), Trigger: "start"}
	return d, nil
}

// Snapshot returns the config in force.
func (d *Daemon) Snapshot() *Snapshot { return d.snap.Load() }

// Metrics returns the daemon's metrics.
func (d *Daemon) Metrics() *Metrics { return d.metrics }

// Run serves until ctx is cancelled (SIGTERM), then shuts down gracefully:
// the listener answers 503, in-flight requests finish, running jobs get
// server.shutdown_timeout to finish and the rest stay pending for the next
// start. SIGHUP reloads the config (and the TLS certificate).
func (d *Daemon) Run(ctx context.Context) error {
	srv := d.server
	if err := os.MkdirAll(srv.DataDir, 0o700); err != nil {
		return fmt.Errorf("data_dir %s: %w", srv.DataDir, err)
	}
	store, err := journal.Open(srv.DataDir, journal.Options{})
	if err != nil {
		return fmt.Errorf("opening the journal in %s: %w", srv.DataDir, err)
	}
	d.store = store
	defer store.Close()
	d.metrics.observeJournal(store.Stats)
	// Not ctx: a SIGTERM during a long start must still end in a clean
	// stop (exit 0) below, not in a failed recovery.
	if n, err := store.RecoverRunning(context.Background()); err != nil {
		return fmt.Errorf("recovering jobs: %w", err)
	} else if n > 0 {
		d.log.Info("jobs interrupted by the last stop will run again", "jobs", n)
	}

	d.handler = webhook.NewHandler(webhook.Options{
		// The table carries max_body and trusted_proxies too, so they
		// follow reloads.
		Table:   func() *webhook.Table { return d.snap.Load().Table },
		Accept:  d.accept,
		Observe: func(source, outcome string) { d.metrics.Webhooks.WithLabelValues(source, outcome).Inc() },
		Logger:  d.log,
	})
	publicLn, err := net.Listen("tcp", srv.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", srv.Listen, err)
	}
	d.publicAddr.Store(publicLn.Addr())
	public := webhook.NewServer(srv.Listen, d.handler)
	public.ErrorLog = slog.NewLogLogger(d.log.Handler(), slog.LevelWarn)
	if srv.TLSCert != "" {
		certs, err := webhook.NewCertReloader(srv.TLSCert, srv.TLSKey)
		if err != nil {
			publicLn.Close()
			return fmt.Errorf("tls: %w", err)
		}
		d.certs.Store(certs)
		public.TLSConfig = &tls.Config{GetCertificate: certs.GetCertificate, MinVersion: tls.VersionTLS12}
		publicLn = tls.NewListener(publicLn, public.TLSConfig)
	}

	var admin *http.Server
	var adminLn net.Listener
	if srv.AdminListen != "" && srv.AdminListen != "off" {
		adminLn, err = net.Listen("tcp", srv.AdminListen)
		if err != nil {
			publicLn.Close()
			return fmt.Errorf("admin_listen %s: %w", srv.AdminListen, err)
		}
		d.adminAddr.Store(adminLn.Addr())
		admin = &http.Server{Handler: d.adminHandler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second}
	}

	d.pool = newPool(d)
	serveErr := make(chan error, 2)
	go func() { serveErr <- ignoreClosed(public.Serve(publicLn)) }()
	if admin != nil {
		go func() { serveErr <- ignoreClosed(admin.Serve(adminLn)) }()
	}

	workCtx, stopWork := context.WithCancel(context.Background())
	defer stopWork()
	pool := d.pool
	poolDone := make(chan struct{})
	go func() { pool.run(workCtx); close(poolDone) }()

	bgCtx, stopBg := context.WithCancel(ctx)
	defer stopBg()
	go d.watch(bgCtx)
	go d.housekeeping(bgCtx)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	d.log.Info("payramd started", "listen", publicLn.Addr().String(), "admin", addrString(adminLn), "data_dir", srv.DataDir,
		"sources", len(d.Snapshot().Config.Sources), "rules", len(d.Snapshot().Rules.Rules), "version", d.opts.Version)
	d.notify.Ready("payramd serving")
	go d.watchdog(bgCtx)

	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-hup:
			_, st := d.reload("SIGHUP")
			if certs := d.certs.Load(); certs != nil && !st.certsLoaded {
				if err := certs.Reload(); err != nil {
					d.log.Error("tls certificate reload failed; the previous certificate stays in use", "err", err)
				} else {
					d.log.Info("tls certificate reloaded")
				}
			}
		case err := <-serveErr:
			if err != nil {
				runErr = err
				d.log.Error("listener failed", "err", err)
				break loop
			}
		}
	}

	d.notify.Stopping()
	// The snapshot's, not srv's: shutdown_timeout follows reloads.
	timeout := d.Snapshot().Config.Server.ShutdownTimeout
	d.log.Info("shutting down", "timeout", timeout.String())
	// From here every webhook is answered 503 and /readyz fails, on new
	// connections too: the listener stays open while running jobs finish,
	// so a provider or load balancer hears "unavailable, try again" rather
	// than a refused connection.
	d.handler.Drain()
	deadline := time.Now().Add(timeout)
	shutCtx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	pool.stopClaiming()
	select {
	case <-pool.idle():
	case <-shutCtx.Done():
		d.log.Warn("shutdown timeout: jobs still running will run again at the next start")
	}
	// Requests in flight since before the drain are a commit away from
	// their answer: they get a moment even when jobs used up the timeout.
	// Jobs they hand to the pool now are put back to pending below.
	reqCtx, cancelReq := context.WithTimeout(context.Background(), max(time.Until(deadline), inFlightGrace))
	defer cancelReq()
	_ = public.Shutdown(reqCtx)
	stopWork()
	<-poolDone
	pool.unclaimBacklog()
	if admin != nil {
		_ = admin.Shutdown(shutCtx)
	}
	d.log.Info("stopped")
	return runErr
}

// inFlightGrace is how long a shutdown waits for requests already in
// flight when the shutdown timeout has run out.
const inFlightGrace = time.Second

func addrString(l net.Listener) string {
	if l == nil {
		return "off"
	}
	return l.Addr().String()
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// PublicAddr is the webhook listener's address once Run listens.
func (d *Daemon) PublicAddr() net.Addr {
	a, _ := d.publicAddr.Load().(net.Addr)
	return a
}

// acceptTimeout bounds the wait for a webhook's journal write, under the
// server's 30s write timeout so that the 503 can still be written. A
// variable for tests.
var acceptTimeout = 25 * time.Second

// accept evaluates an event against the current rules and journals it with
// its jobs in one durable transaction. The webhook answers 2xx only after
// this returns nil.
func (d *Daemon) accept(ctx context.Context, ev *engine.Event) (bool, error) {
	start := time.Now()
	snap := d.snap.Load()
	jev, eval, err := d.evaluate(snap, ev)
	if err != nil {
		return false, err
	}
	// Jobs are inserted already claimed and handed to the pool with the
	// event in memory, unless the pool is behind or stopping: then they are
	// pending and the dispatcher claims them from the journal.
	eval.Claim = len(eval.Matches) > 0 && d.pool.canTake()
	ctx, cancel := context.WithTimeout(ctx, acceptTimeout)
	defer cancel()
	res, err := d.store.Ingest(ctx, jev, eval)
	if err != nil || res.Duplicate {
		return res.Duplicate, err
	}
	d.metrics.Ingest.Observe(time.Since(start).Seconds())
	d.countResults(ev, eval)
	for _, rule := range res.RanElsewhere {
		d.log.Info("rule already ran for this event id on another source; not run again",
			"event", ev.ID, "source", ev.Source, "rule", rule)
	}
	if len(res.Jobs) > 0 {
		// Retries and jobs left pending read their event from this cache
		// first, the journal second.
		d.events.put(ev, len(res.Jobs))
		if eval.Claim {
			d.pool.submit(res.Jobs, ev)
			d.kick()
		} else {
			d.jobsPending()
		}
	}
	return false, nil
}

// evaluate runs the rules and turns the results into the journal's form.
func (d *Daemon) evaluate(snap *Snapshot, ev *engine.Event) (*journal.Event, *journal.Evaluation, error) {
	payload, err := engine.EncodeJSON(ev.Payload)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding payload: %w", err)
	}
	jev := &journal.Event{ID: ev.ID, Source: ev.Source, Provider: ev.Provider, Type: ev.Type, ReceivedAt: ev.ReceivedAt, Headers: ev.Headers, Body: ev.Raw, Payload: payload, ProviderID: ev.ProviderID}
	eval := &journal.Evaluation{}
	for _, r := range snap.Rules.Evaluate(ev, false) {
		if r.Err != nil {
			eval.Results = append(eval.Results, journal.RuleResult{Rule: r.Rule.Name, Error: r.Err.Error()})
			continue
		}
		eval.Results = append(eval.Results, journal.RuleResult{Rule: r.Rule.Name, Matched: true})
		eval.Matches = append(eval.Matches, journal.Match{Rule: r.Rule.Name, OnceKey: r.OnceKey, HasOnce: r.HasOnce, Actions: snap.EnabledActions(r.Rule.Actions)})
	}
	return jev, eval, nil
}

func (d *Daemon) countResults(ev *engine.Event, eval *journal.Evaluation) {
	for _, r := range eval.Results {
		switch {
		case r.Error != "":
			d.metrics.RuleErrors.WithLabelValues(r.Rule).Inc()
			d.log.Warn("rule failed at run time and did not match", "event", ev.ID, "source", ev.Source, "rule", r.Rule, "err", r.Error)
		case r.Matched:
			d.metrics.RuleMatches.WithLabelValues(r.Rule).Inc()
		}
	}
}

// jobsPending tells the job dispatcher that the journal holds new pending
// jobs (or retries whose time it must learn), which it then claims.
func (d *Daemon) jobsPending() {
	d.pool.pending.Store(true)
	d.kick()
}

// kick wakes the job dispatcher without blocking, to start jobs queued in
// memory; only after jobsPending does it also look in the journal.
func (d *Daemon) kick() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// housekeeping prunes what retention allows and refreshes the job gauges.
func (d *Daemon) housekeeping(ctx context.Context) {
	gauge := time.NewTicker(5 * time.Second)
	prune := time.NewTicker(time.Hour)
	defer gauge.Stop()
	defer prune.Stop()
	d.refreshJobGauges(ctx)
	d.prune(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-gauge.C:
			d.refreshJobGauges(ctx)
		case <-prune.C:
			d.prune(ctx)
		}
	}
}

func (d *Daemon) refreshJobGauges(ctx context.Context) {
	counts, err := d.store.CountJobs(ctx)
	if err != nil {
		return
	}
	for _, s := range []journal.JobState{journal.Pending, journal.Running, journal.Dead} {
		d.metrics.Jobs.WithLabelValues(string(s)).Set(float64(counts[s]))
	}
}

func (d *Daemon) prune(ctx context.Context) {
	ret := d.Snapshot().Config.Server.Retention
	if ret <= 0 {
		return
	}
	n, err := d.store.Prune(ctx, time.Now().Add(-ret))
	if err != nil {
		d.log.Warn("pruning the journal failed", "err", err)
	} else if n > 0 {
		d.log.Info("pruned events older than retention", "events", n, "retention", ret.String())
	}
}
