package metadata

import (
	"context"
	"log/slog"
	"sort"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newZapLogger routes the zap logs of the etcd client and the embedded etcd
// server to logger, from level min up. etcd logs a lot at info (every
// election, every snapshot); warnings (slow disk, slow applies) are worth
// keeping. A nil logger discards everything.
func newZapLogger(logger *slog.Logger, min zapcore.Level) *zap.Logger {
	return newZapLoggerDemoting(logger, min, nil)
}

// newZapLoggerDemoting is newZapLogger where messages for which demote
// returns true are logged at debug level: warnings that are expected and
// say nothing to an operator.
func newZapLoggerDemoting(logger *slog.Logger, min zapcore.Level, demote func(msg string) bool) *zap.Logger {
	if logger == nil {
		return zap.NewNop()
	}
	return zap.New(&slogCore{logger: logger, min: min, demote: demote})
}

// slogCore is a zapcore.Core writing to a slog.Logger.
type slogCore struct {
	logger *slog.Logger
	min    zapcore.Level
	demote func(msg string) bool
	attrs  []slog.Attr // from With
}

func (c *slogCore) Enabled(l zapcore.Level) bool { return l >= c.min }

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	clone := *c
	clone.attrs = append(append([]slog.Attr(nil), c.attrs...), fieldAttrs(fields)...)
	return &clone
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	level := slog.LevelError
	switch {
	case e.Level <= zapcore.DebugLevel:
		level = slog.LevelDebug
	case e.Level == zapcore.InfoLevel:
		level = slog.LevelInfo
	case e.Level == zapcore.WarnLevel:
		level = slog.LevelWarn
	}
	if c.demote != nil && e.Level < zapcore.DPanicLevel && c.demote(e.Message) {
		level = slog.LevelDebug
	}
	attrs := make([]slog.Attr, 0, len(c.attrs)+len(fields)+1)
	attrs = append(attrs, slog.String("component", "etcd"))
	attrs = append(attrs, c.attrs...)
	attrs = append(attrs, fieldAttrs(fields)...)
	c.logger.LogAttrs(context.Background(), level, e.Message, attrs...)
	return nil
}

func (c *slogCore) Sync() error { return nil }

func fieldAttrs(fields []zapcore.Field) []slog.Attr {
	if len(fields) == 0 {
		return nil
	}
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	names := make([]string, 0, len(enc.Fields))
	for k := range enc.Fields {
		names = append(names, k)
	}
	sort.Strings(names) // map order is random; logs should not be
	attrs := make([]slog.Attr, len(names))
	for i, k := range names {
		attrs[i] = slog.Any(k, enc.Fields[k])
	}
	return attrs
}
