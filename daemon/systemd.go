package daemon

import (
	"context"
	"log/slog"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/payramd/payramd/journal"
)

// Notifier tells the service manager about state changes.
type Notifier interface {
	Ready(status string)
	Reloading()
	Stopping()
	Watchdog()
	// WatchdogInterval is how often Watchdog must be called (0: never).
	WatchdogInterval() time.Duration
}

type nopNotifier struct{}

func (nopNotifier) Ready(string)                    {}
func (nopNotifier) Reloading()                      {}
func (nopNotifier) Stopping()                       {}
func (nopNotifier) Watchdog()                       {}
func (nopNotifier) WatchdogInterval() time.Duration { return 0 }

// Systemd speaks the sd_notify protocol over $NOTIFY_SOCKET; without the
// variable every call does nothing, so it is safe outside systemd.
type Systemd struct {
	Log *slog.Logger
}

func (s Systemd) send(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil && s.Log != nil {
		s.Log.Warn("sd_notify failed", "err", err)
	}
}

// Ready sends READY=1 with a status line.
func (s Systemd) Ready(status string) { s.send(daemon.SdNotifyReady + "\nSTATUS=" + status) }

// Reloading sends RELOADING=1 with MONOTONIC_USEC in the same datagram, as
// Type=notify-reload requires (without it `systemctl reload` hangs).
func (s Systemd) Reloading() {
	s.send(daemon.SdNotifyReloading + "\n" + daemon.SdNotifyMonotonicUsec())
}

// Stopping sends STOPPING=1.
func (s Systemd) Stopping() { s.send(daemon.SdNotifyStopping) }

// Watchdog sends WATCHDOG=1.
func (s Systemd) Watchdog() { s.send(daemon.SdNotifyWatchdog) }

// WatchdogInterval is half of WatchdogSec, or 0 when the watchdog is off.
func (s Systemd) WatchdogInterval() time.Duration {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil || d <= 0 {
		return 0
	}
	return d / 2
}

// watchdog pings systemd while the daemon is healthy: the ping comes from a
// check of the journal, not a free-running timer, so a wedged journal makes
// systemd restart the service. A full disk is not such a case: a restart
// frees no space, and every one would interrupt running jobs (which then
// run again), so the watchdog is pinged through it while /readyz fails and
// webhooks get 503.
func (d *Daemon) watchdog(ctx context.Context) {
	iv := d.notify.WatchdogInterval()
	if iv <= 0 {
		return
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, iv)
			err := d.store.Ping(pctx)
			cancel()
			switch {
			case journal.IsNoSpace(err):
				d.log.Error("the disk is full: webhooks get 503 until there is room (a restart would not help)", "err", err)
			case err != nil:
				d.log.Error("journal health check failed; not pinging the watchdog", "err", err)
				continue
			}
			d.notify.Watchdog()
		}
	}
}
