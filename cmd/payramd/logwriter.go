package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"
)

// bufferedLog batches log lines into fewer writes: at thousands of
// webhooks a second, one write(2) per line costs more than verifying the
// webhook. Lines reach the log within flushEvery; on kill -9 at most that
// much log (never journal data) is lost. Terminals are not buffered.
type bufferedLog struct {
	mu   sync.Mutex
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

const flushEvery = 200 * time.Millisecond

func newBufferedLog(w io.Writer) *bufferedLog {
	b := &bufferedLog{w: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go b.loop()
	return b
}

func (b *bufferedLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Write(p)
}

func (b *bufferedLog) loop() {
	defer close(b.done)
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			b.Flush()
		case <-b.stop:
			b.Flush()
			return
		}
	}
}

// Flush writes out what is buffered.
func (b *bufferedLog) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	_ = b.w.Flush()
}

// Close flushes and stops the flusher.
func (b *bufferedLog) Close() {
	close(b.stop)
	<-b.done
}

// priorityHandler starts each log line with the syslog priority of its
// level (<3> error, <4> warning, <6> info, <7> debug), which journald reads
// from a service's output and strips: `journalctl -p err` then shows the
// errors, where every line was filed at info before. Used only when the
// output is journald's stream (see journalStream).
type priorityHandler struct {
	inner slog.Handler
	w     *priorityWriter // shared with the handlers WithAttrs makes
}

// priorityWriter puts the current record's prefix before the line the
// inner handler writes; Handle holds mu from setting the prefix to the
// write, so lines of concurrent records never get each other's.
type priorityWriter struct {
	mu     sync.Mutex
	out    io.Writer
	prefix string
	line   []byte
}

func newPriorityHandler(out io.Writer, newInner func(io.Writer) slog.Handler) *priorityHandler {
	w := &priorityWriter{out: out}
	return &priorityHandler{inner: newInner(w), w: w}
}

// journalLineMax is the longest line, prefix included, written under
// journald. journald cuts a longer line (at LineMax=, 48K by default) and
// reads the piece after the cut for a priority prefix of its own, which a
// logged value could supply: a payload's customer-written field in a log
// action's message could put "<0>" there, and journald would file the rest
// as an emergency and write it to every terminal (ForwardToWall). So a
// longer line is cut here, between characters, and every piece carries the
// record's priority. 4 KiB leaves most lines whole and stays under any
// LineMax= an operator is likely to set.
const journalLineMax = 4096

func (w *priorityWriter) Write(p []byte) (int, error) {
	w.line = w.line[:0]
	rest := bytes.TrimSuffix(p, []byte("\n"))
	for first := true; first || len(rest) > 0; first = false {
		n := min(len(rest), journalLineMax-len(w.prefix))
		for n < len(rest) && n > 0 && !utf8.RuneStart(rest[n]) {
			n-- // not inside a character
		}
		if n == 0 {
			n = min(len(rest), journalLineMax-len(w.prefix)) // not UTF-8
		}
		w.line = append(append(append(w.line, w.prefix...), rest[:n]...), '\n')
		rest = rest[n:]
	}
	if _, err := w.out.Write(w.line); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (h *priorityHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *priorityHandler) Handle(ctx context.Context, r slog.Record) error {
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	switch {
	case r.Level >= slog.LevelError:
		h.w.prefix = "<3>"
	case r.Level >= slog.LevelWarn:
		h.w.prefix = "<4>"
	case r.Level >= slog.LevelInfo:
		h.w.prefix = "<6>"
	default:
		h.w.prefix = "<7>"
	}
	return h.inner.Handle(ctx, r)
}

func (h *priorityHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &priorityHandler{inner: h.inner.WithAttrs(as), w: h.w}
}

func (h *priorityHandler) WithGroup(name string) slog.Handler {
	return &priorityHandler{inner: h.inner.WithGroup(name), w: h.w}
}
