package daemon

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/payramd/payramd/config"
)

// debounce is how long the watcher waits for a burst of file events
// (an editor's write-rename-chmod) to settle before reloading.
const debounce = 250 * time.Millisecond

// Reload loads the config again and swaps it in when, and only when, every
// part of it is valid. On any error the running config stays and every
// problem is logged with its position. It is safe to call concurrently.
func (d *Daemon) Reload(trigger string) bool {
	ok, _ := d.reload(trigger)
	return ok
}

// reload is Reload, also returning this reload's status (lastReload may be
// another reload's by the time a caller reads it).
func (d *Daemon) reload(trigger string) (bool, reloadStatus) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	d.notify.Reloading()
	// READY=1 ends the reload either way; its STATUS (systemctl status)
	// says when the edit was refused and the previous config still runs.
	readyStatus := "payramd serving"
	defer func() { d.notify.Ready(readyStatus) }()
	start := time.Now()
	old := d.snap.Load()
	snap, probs := Load(d.opts.Load)
	status := reloadStatus{At: time.Now(), Trigger: trigger}
	for _, p := range probs.List {
		status.Problems = append(status.Problems, p.String())
	}
	if snap == nil {
		for _, p := range probs.List {
			if p.Warning {
				d.log.Warn("config warning", "problem", p.String())
			} else {
				d.log.Error("config error", "problem", p.String())
			}
		}
		d.log.Error("config reload refused: the previous config keeps running", "trigger", trigger, "errors", countErrors(probs.List))
		readyStatus = fmt.Sprintf("payramd serving the previous config: reload refused (%d errors, see the log or run payramd check)", countErrors(probs.List))
		d.metrics.ReloadOK.Set(0)
		d.lastReload = status
		return false, status
	}
	for _, p := range probs.List {
		d.log.Warn("config warning", "problem", p.String())
	}
	// These server settings are bound when the listeners and the journal
	// start; a reload keeps the running values. The others (max_body,
	// trusted_proxies, workers, shutdown_timeout) are read from the
	// snapshot where they are used, so they follow the reload.
	cur := d.server
	ns := &snap.Config.Server
	certs := d.certs.Load()
	if certs != nil {
		cur.TLSCert, cur.TLSKey = certs.Files() // a reload may have changed them
	}
	if changed := restartOnlyChanges(&cur, ns, certs != nil); len(changed) > 0 {
		d.log.Warn("server settings changed that take effect only on restart; keeping the running values until payramd restarts", "changed", strings.Join(changed, ", "))
		if (cur.TLSCert == "") != (ns.TLSCert == "") {
			d.log.Warn("turning TLS on or off takes effect only on restart: the webhook listener keeps its kind until payramd restarts", "tls", cur.TLSCert != "")
		}
		ns.Listen, ns.AdminListen, ns.DataDir = cur.Listen, cur.AdminListen, cur.DataDir
		if slices.Contains(changed, "tls_cert") || slices.Contains(changed, "tls_key") {
			ns.TLSCert, ns.TLSKey = cur.TLSCert, cur.TLSKey
		}
	}
	// The token check of the config loader saw the new file's admin_listen;
	// the listener still runs on the old one. An admin API bound off
	// loopback must never lose its token through a reload.
	if ns.AdminToken == "" && cur.AdminListen != "off" && !config.IsLoopback(cur.AdminListen) {
		status.Problems = append(status.Problems, "admin_token: the admin API runs on "+cur.AdminListen+", which is not loopback, so admin_token cannot be removed by a reload")
		d.log.Error("config reload refused: admin_token is empty but the running admin listener is not on loopback", "admin_listen", cur.AdminListen, "trigger", trigger)
		readyStatus = "payramd serving the previous config: reload refused (admin_token removed from a non-loopback admin listener)"
		d.metrics.ReloadOK.Set(0)
		d.lastReload = status
		return false, status
	}
	// With TLS on, other certificate files are loaded now, last before the
	// swap: a pair that does not load refuses the whole reload (SPEC 8:
	// only a fully valid config replaces the running one), and the
	// certificate and config in use stay.
	if certs != nil && (ns.TLSCert != cur.TLSCert || ns.TLSKey != cur.TLSKey) {
		if err := certs.SetFiles(ns.TLSCert, ns.TLSKey); err != nil {
			status.Problems = append(status.Problems, "tls: "+err.Error()+"; the previous certificate stays in use")
			d.log.Error("config reload refused: the new tls_cert/tls_key do not load; the previous config and certificate keep running", "err", err, "trigger", trigger)
			readyStatus = "payramd serving the previous config: reload refused (tls_cert/tls_key do not load)"
			d.metrics.ReloadOK.Set(0)
			d.lastReload = status
			return false, status
		}
		d.log.Info("tls certificate reloaded", "tls_cert", ns.TLSCert, "tls_key", ns.TLSKey)
		status.certsLoaded = true
	}
	// Rate-limit buckets carry over, or every reload would hand each
	// source a full burst.
	snap.Table.InheritLimits(old.Table)
	d.snap.Store(snap)
	// A larger worker pool starts the jobs waiting for a worker now.
	d.kick()
	status.OK = true
	d.lastReload = status
	d.metrics.declare(snap)
	d.metrics.ReloadOK.Set(1)
	d.metrics.ReloadTime.Set(float64(time.Now().Unix()))
	d.log.Info("config reloaded", "trigger", trigger, "rules", len(snap.Rules.Rules), "sources", len(snap.Config.Sources),
		"actions", len(snap.Config.Actions), "took", time.Since(start).Round(time.Microsecond).String(), "previous_rules", len(old.Rules.Rules))
	return true, status
}

// restartOnlyChanges names the server settings bound at start (listeners,
// journal) that differ between the running config and a new one, so that
// the warning says which edit waits for a restart. The TLS files are among
// them when TLS is turned on or off (the listener's kind changes) or when
// no certificate reloader runs (certsReloadable false); otherwise a reload
// loads the new files.
func restartOnlyChanges(cur, ns *config.Server, certsReloadable bool) []string {
	tlsFixed := !certsReloadable || (cur.TLSCert == "") != (ns.TLSCert == "")
	var changed []string
	for _, c := range []struct {
		name string
		diff bool
	}{
		{"listen", ns.Listen != cur.Listen},
		{"admin_listen", ns.AdminListen != cur.AdminListen},
		{"data_dir", ns.DataDir != cur.DataDir},
		{"tls_cert", tlsFixed && ns.TLSCert != cur.TLSCert},
		{"tls_key", tlsFixed && ns.TLSKey != cur.TLSKey},
	} {
		if c.diff {
			changed = append(changed, c.name)
		}
	}
	return changed
}

func countErrors(list []config.Problem) int {
	n := 0
	for _, p := range list {
		if !p.Warning {
			n++
		}
	}
	return n
}

// watch reloads when the config or an include changes. It watches
// directories, not files: editors save by writing a new file and renaming
// it over the old one, and Kubernetes swaps a symlink, both of which end a
// watch on the file itself. Any event in a watched directory triggers a
// content check; only a real change reloads. A slow poll backs the watcher
// up on filesystems where inotify says nothing (NFS, some containers).
func (d *Daemon) watch(ctx context.Context) {
	snap := d.Snapshot()
	if snap.Config.Embedded {
		return
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		d.log.Warn("cannot watch the config for changes; use SIGHUP or POST /api/reload", "err", err)
		return
	}
	defer w.Close()
	watched := map[string]bool{}
	addDirs := func(s *Snapshot) {
		for _, dir := range watchDirs(s) {
			if watched[dir] {
				continue
			}
			if err := w.Add(dir); err != nil {
				d.log.Warn("cannot watch a config directory", "dir", dir, "err", err)
				continue
			}
			watched[dir] = true
		}
	}
	addDirs(snap)
	last := hashFiles(snap)
	var timer <-chan time.Time
	poll := time.NewTicker(10 * time.Second)
	defer poll.Stop()
	check := func(trigger string) {
		cur := d.Snapshot()
		h := hashFiles(cur)
		if h == last {
			return
		}
		// last is the content this reload reads (or newer): hashing again
		// after the reload could record an edit made meanwhile as seen.
		last = h
		if d.Reload(trigger) {
			addDirs(d.Snapshot())
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-w.Events:
			if !ok {
				return
			}
			timer = time.After(debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			d.log.Warn("config watcher error", "err", err)
		case <-timer:
			timer = nil
			check("file change")
		case <-poll.C:
			check("file change (poll)")
		}
	}
}

// watchDirs are the directories holding the config, its includes and the
// targets of symlinks among them.
func watchDirs(s *Snapshot) []string {
	var dirs []string
	add := func(p string) {
		dir := filepath.Dir(p)
		if !slices.Contains(dirs, dir) {
			dirs = append(dirs, dir)
		}
	}
	for _, f := range s.Config.Files {
		add(f)
		if real, err := filepath.EvalSymlinks(f); err == nil && real != f {
			add(real)
		}
	}
	for _, p := range s.Config.IncludePatterns {
		add(p)
	}
	return dirs
}

// hashFiles fingerprints the config: the name and content of every file
// read and every file the include patterns match now (a new drop-in file
// changes the config without changing any file already read). The same
// files on disk give the same fingerprint whichever snapshot lists them:
// hashed against the snapshot a reload replaces and against the one it
// loads, an added or removed include must not look like a second change
// (that reloaded the config again at the next poll).
func hashFiles(s *Snapshot) [32]byte {
	names := slices.Clone(s.Config.Files)
	for _, p := range s.Config.IncludePatterns {
		m, _ := filepath.Glob(p)
		names = append(names, m...)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	h := sha256.New()
	for _, f := range names {
		b, err := os.ReadFile(f)
		if err != nil {
			// Gone (a removed include, or a save between delete and
			// create): absent from the fingerprint, as from a snapshot
			// loaded now.
			continue
		}
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(b))
		h.Write(b)
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}
