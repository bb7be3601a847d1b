package actions

import (
	"context"
	"log/slog"

	"github.com/payramd/payramd/config"
	"github.com/payramd/payramd/engine"
)

func init() { Register("log", newLog) }

var _ Action = (*Log)(nil)

// Log writes a line to payramd's own log: `message` (a template) and
// `level` (debug, info, warn or error; info by default). It cannot fail, so
// it is the cheapest way to try a rule out before pointing it at a
// receiver.
type Log struct {
	message *engine.Template
	level   slog.Level
	// logger is slog.Default() when nil; tests set it.
	logger *slog.Logger
}

var logLevels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}

func newLog(c *config.Action) (Action, error) {
	s := newSpec(c)
	a := &Log{
		message: s.requiredTemplate("message", " (the line to log, such as \"paid {{ reference_id }}\")"),
		level:   logLevels[s.f.OneOf("level", "info", "debug", "info", "warn", "error")],
	}
	if !s.ok() {
		return nil, errInvalid
	}
	return a, nil
}

// Render shows the line and its level.
func (a *Log) Render(j *Job) (*Rendered, error) {
	msg, err := render("message", a.message, j.Event.Env())
	if err != nil {
		return nil, err
	}
	return &Rendered{Type: "log", Fields: []KV{{"level", levelName(a.level)}, {"message", msg}}}, nil
}

// Run logs the message with the event id, rule and action as attributes.
func (a *Log) Run(ctx context.Context, j *Job) Result {
	msg, err := render("message", a.message, j.Event.Env())
	if err != nil {
		return permanent(err, "")
	}
	l := a.logger
	if l == nil {
		l = slog.Default()
	}
	l.Log(ctx, a.level, msg, "event", j.Event.ID, "source", j.Event.Source, "rule", j.Rule, "action", j.Action)
	return success(msg)
}

func levelName(l slog.Level) string {
	for name, v := range logLevels {
		if v == l {
			return name
		}
	}
	return l.String()
}
