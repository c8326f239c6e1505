// Command opentracy is the OpenTracy desktop app. With no sub-command it opens the window (or,
// without a display, serves headless); `serve` runs headless; `version` prints the version.
package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"opentracy/app"
	"opentracy/backend/api"
	"opentracy/backend/buildinfo"
	"opentracy/backend/config"
	"opentracy/backend/gateway/bench"
	"opentracy/backend/server"
	"opentracy/gpu/worker"
)

//go:embed all:frontend/dist
var frontendDist embed.FS

//go:embed build/appicon.png
var appIcon []byte

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `OpenTracy: a local LLM gateway that traces every request and distils cheaper models from them.

Usage:
  opentracy [flags]          open the desktop window (serves headless when there is no display)
  opentracy serve [flags]    serve the gateway, API and UI headless
  opentracy version          print the version
  opentracy bench [flags]    measure the gateway against a fake upstream (opentracy bench -h)
  opentracy model COMMAND    download, train (LoRA), run and benchmark local models (opentracy model -h)

Flags:
`

// run executes one command line and returns the exit status; ctx ends the server.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := ""
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, "opentracy", buildinfo.Version())
		return 0
	case "bench":
		return runBench(ctx, args, stdout, stderr)
	case "model":
		return runModel(ctx, args, stdout, stderr)
	case worker.Command:
		// Not in the usage: the app starts it (see gpu/worker), people do not.
		return worker.Main(ctx, args, stderr)
	case "", "serve":
	case "help":
		args = []string{"-h"}
	default:
		fmt.Fprintf(stderr, "opentracy: unknown command %q (want serve, bench or version; see opentracy -h)\n", cmd)
		return 2
	}

	fset := flag.NewFlagSet("opentracy", flag.ContinueOnError)
	fset.SetOutput(stderr)
	var flags config.Flags
	fset.StringVar(&flags.ConfigFile, "config", "", "YAML config file (default $"+config.EnvConfig+" or $XDG_CONFIG_HOME/opentracy/config.yaml)")
	fset.StringVar(&flags.Addr, "addr", "", "listen address (default "+config.DefaultAddr+"; env "+config.EnvAddr+")")
	fset.StringVar(&flags.DataDir, "data-dir", "", "data directory (default $XDG_DATA_HOME/opentracy; env "+config.EnvDataDir+")")
	fset.StringVar(&flags.GatewayKey, "gateway-key", "", "gateway key clients must send (default: generated on first run; env "+config.EnvGatewayKey+")")
	fset.StringVar(&flags.LogLevel, "log-level", "", "debug, info, warn or error (env "+config.EnvLogLevel+")")
	fset.Usage = func() {
		fmt.Fprint(stderr, usage)
		fset.PrintDefaults()
	}
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fset.NArg() > 0 {
		fmt.Fprintf(stderr, "opentracy: unexpected argument %q\n", fset.Arg(0))
		return 2
	}

	cfg, err := config.Load(flags, os.LookupEnv)
	if err != nil {
		fmt.Fprintln(stderr, "opentracy:", err)
		return 1
	}
	level, _ := config.ParseLogLevel(cfg.LogLevel) // validated by Load
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	desktop := cmd == ""
	if why := app.WhyNoWindow(); desktop && why != "" {
		fmt.Fprintln(stdout, why+": falling back to `opentracy serve`.")
		desktop = false
	}

	if err := start(ctx, cfg, desktop, log, stdout); err != nil {
		log.Error("exiting", "err", err)
		return 1
	}
	return 0
}

func start(ctx context.Context, cfg config.Config, desktop bool, log *slog.Logger, stdout io.Writer) error {
	if err := config.PrepareDataDir(cfg.DataDir, log); err != nil {
		return err
	}
	secrets, err := config.LoadSecrets(cfg.DataDir, log)
	if err != nil {
		return err
	}
	ui, err := fs.Sub(frontendDist, "frontend/dist")
	if err != nil {
		return fmt.Errorf("embedded UI: %w", err)
	}
	shell := api.ShellServer
	if desktop {
		shell = api.ShellDesktop
	}
	srv, err := server.New(server.Options{
		Config: cfg, Secrets: secrets, UI: ui, Shell: shell, Version: buildinfo.Version(), Logger: log, Env: os.LookupEnv,
	})
	if err != nil {
		return err
	}
	defer func() {
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdownCtx); err != nil {
			log.Warn("shutdown", "err", err)
		}
	}()

	if err := srv.Start(ctx); err != nil {
		return err
	}
	urls := srv.URLs()
	fmt.Fprintf(stdout, "OpenTracy %s serving (%s)\n  UI:           %s\n  Gateway URL:  %s\n  Gateway key:  %s\n  Data dir:     %s\n",
		buildinfo.Version(), map[bool]string{true: "desktop", false: "headless"}[desktop], urls.UI, urls.Gateway, srv.GatewayKey().Reveal(), cfg.DataDir)
	if desktop {
		return app.Run(ctx, app.Options{Handler: srv.DesktopHandler(), DataDir: cfg.DataDir, Icon: appIcon, Logger: log})
	}
	select {
	case <-ctx.Done():
		log.Info("stopping", "reason", context.Cause(ctx))
		return nil
	case err := <-srv.Done():
		return err
	}
}

// runBench measures this binary's gateway (started as a child `serve`) or another gateway by URL.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("opentracy bench", flag.ContinueOnError)
	fset.SetOutput(stderr)
	var cfg bench.Config
	cfg.RegisterFlags(fset)
	serveUpstream := fset.String("serve-upstream", "", "serve only the fake upstream on this address (`127.0.0.1:0` for any port) until interrupted: the process a run starts for its fake")
	serveProxy := fset.String("serve-minimal-proxy", "", "serve only the minimal proxy on this address, in front of -upstream, until interrupted: the process a run starts for it")
	upstreamInProcess := fset.Bool("upstream-in-process", false, "serve the fake upstream inside the harness's process rather than in one of its own (its direct round trip is then shorter than a real upstream's)")
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *serveUpstream != "" {
		if err := bench.ServeUpstream(ctx, *serveUpstream, stdout); err != nil {
			fmt.Fprintln(stderr, "opentracy bench:", err)
			return 1
		}
		return 0
	}
	if *serveProxy != "" {
		if err := bench.ServeMinimalProxy(ctx, *serveProxy, cfg.Upstream, stdout); err != nil {
			fmt.Fprintln(stderr, "opentracy bench:", err)
			return 1
		}
		return 0
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "opentracy bench:", err)
		return 1
	}
	cfg.ProxyBinary = self
	if cfg.Binary == "" && cfg.Target == "" {
		cfg.Binary = self
	}
	if !*upstreamInProcess && cfg.Upstream == "" {
		cfg.UpstreamBinary = self
	}
	report, err := bench.Run(ctx, cfg, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "opentracy bench:", err)
		return 1
	}
	if failed := report.Failed(); len(failed) > 0 {
		fmt.Fprintf(stdout, "%d target(s) missed on this machine\n", len(failed))
	}
	return 0
}
