package actors

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// RunWithRouter runs fn with a new master router and shuts the router
// down after it, whatever fn returns (Mitogen's run_with_router). The
// shutdown gets 30 seconds before children are killed.
func RunWithRouter(fn func(*Router) error, opts ...Option) (err error) {
	r, err := NewRouter(opts...)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if serr := r.Shutdown(ctx); serr != nil && err == nil {
			err = fmt.Errorf("mitogo: shutdown: %w", serr)
		}
	}()
	return fn(r)
}

// LogToFile returns a router option that writes the tree's log records,
// the master's and every child's, to the file at path as text lines (like
// Mitogen's log_to_file). The file is appended to and created 0600 if needed;
// close it with the returned function after Shutdown.
func LogToFile(path string, level slog.Level) (Option, func() error, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("mitogo: log file: %w", err)
	}
	l := slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: level}))
	return func(c *config) { c.logger, c.logLevel = l, level }, f.Close, nil
}
