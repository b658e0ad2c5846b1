package observability

import (
	"io"
	"log/slog"
)

// NewLogger returns a logger writing to w as "json" or, for any other format, "text".
func NewLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
