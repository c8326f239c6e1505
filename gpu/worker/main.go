package worker

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/gomlx/compute"
)

// Main runs a worker process (`opentracy engine-worker`): the protocol on stdin and stdout,
// logs as slog JSON on stderr, the backend from $GOMLX_BACKEND (DefaultBackend when unset). It
// returns the exit status: 0 once stdin ends.
func Main(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("opentracy "+Command, flag.ContinueOnError)
	fs.SetOutput(stderr)
	level := fs.String("log-level", "info", "debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: opentracy %s [--log-level LEVEL]\n\nRuns the student engine for the app, which starts it: a protocol on stdin/stdout, not for people.\n\nFlags:\n", Command)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "opentracy %s: --log-level %q: %v\n", Command, *level, err)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	out, err := protocolOutput()
	if err != nil {
		log.Error("cannot set up the protocol's output", "err", err)
		return 1
	}
	spec := strings.TrimSpace(os.Getenv(compute.ConfigEnvVar))
	engine := NewEngine(EngineOptions{Backend: spec, Logger: log})
	defer engine.Close()
	if err := NewServer(engine, log).Serve(ctx, os.Stdin, out); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("engine worker stopped", "err", err)
		return 1
	}
	return 0
}
