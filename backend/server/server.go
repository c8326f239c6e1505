// Package server owns the one http.Handler of OpenTracy: the gateway under /v1 and /anthropic, the
// management API under /api, live events at /api/events, /healthz and the embedded UI. The headless
// shell serves it on a TCP listener; the desktop shell also mounts it in the Wails AssetServer.
package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"opentracy/backend/aliases"
	"opentracy/backend/api"
	"opentracy/backend/config"
	"opentracy/backend/events"
	"opentracy/backend/gateway"
	"opentracy/backend/h1serve"
	"opentracy/backend/traces"
)

// Options are what a Server is built from.
type Options struct {
	Config  config.Config
	Secrets config.Secrets
	// UI is the built frontend (frontend/dist); it must contain index.html to show the app.
	UI      fs.FS
	Shell   api.Shell
	Version string
	Logger  *slog.Logger
	// StatsInterval is how often server.stats events are published (default 2 s).
	StatsInterval time.Duration
	// Env looks up environment variables (provider keys and base URLs); default none.
	Env config.Environment
	// Sink receives every gateway trace (default: the journaled SQLite store in the data dir).
	Sink traces.Sink
}

// Server is one running instance: listener, handler and background publishers.
type Server struct {
	opts      Options
	log       *slog.Logger
	hub       *events.Hub
	startedAt time.Time

	gatewayKey     config.Secret
	gatewayKeyFrom api.KeySource

	traces    *traceSink // nil when Options.Sink was given
	gateway   *gateway.Gateway
	aliases   *aliases.Registry
	providers *providerSet
	parts     gatewayParts
	engine    *engineState // model downloads, the GPU runtime and their jobs

	allowed atomic.Pointer[map[string]bool] // Host header values accepted; set by Start

	mu       sync.Mutex
	addr     string // set by Start
	httpSrv  *h1serve.Server
	stop     context.CancelFunc
	bg       sync.WaitGroup
	serveErr chan error
}

// New builds a server and its gateway from the configuration; nothing listens until Start.
func New(opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.StatsInterval <= 0 {
		opts.StatsInterval = 2 * time.Second
	}
	if opts.Env == nil {
		opts.Env = func(string) (string, bool) { return "", false }
	}
	hub := events.NewHub(events.Options{})
	var sink *traceSink
	if opts.Sink == nil {
		var err error
		if sink, err = openTraceSink(context.Background(), opts, publishTraces(hub)); err != nil {
			return nil, err
		}
		opts.Sink = sink.writer
	}
	s := &Server{
		opts:           opts,
		log:            opts.Logger.With(LogKeySubsystem, "server"),
		hub:            hub,
		startedAt:      time.Now(),
		gatewayKey:     opts.Secrets.GatewayKey,
		traces:         sink,
		gatewayKeyFrom: api.KeyGenerated,
	}
	if opts.Config.GatewayKey != "" {
		s.gatewayKey = opts.Config.GatewayKey
		s.gatewayKeyFrom = api.KeySource(opts.Config.GatewayKeySource)
	}
	parts, err := buildGateway(opts, opts.Sink)
	if err != nil {
		if sink != nil {
			_ = sink.close(context.Background())
		}
		return nil, err
	}
	s.gateway, s.aliases, s.providers, s.parts = parts.gw, parts.aliases, parts.providers, parts
	if s.engine, err = newEngineState(opts.Config, parts.local.Registry().ModelsDir(), hub, opts.Logger); err != nil {
		parts.local.Close()
		if sink != nil {
			_ = sink.close(context.Background())
		}
		return nil, err
	}
	for _, p := range s.providers.list() {
		s.log.Info("provider", "name", p.provider.Name(), "type", p.cfg.Type, "from", p.source)
	}
	upstreams := 0
	for _, p := range s.providers.list() {
		if p.source != sourceBuiltin {
			upstreams++
		}
	}
	if upstreams == 0 {
		s.log.Warn("no provider configured: set OPENAI_API_KEY, ANTHROPIC_API_KEY, … or add providers to the config file")
	}
	return s, nil
}

// LogKeySubsystem names the component a log line comes from.
const LogKeySubsystem = "subsystem"

// Hub is where feature packages publish live events.
func (s *Server) Hub() *events.Hub { return s.hub }

// Start listens on the configured address and serves in the background until Shutdown.
func (s *Server) Start(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.opts.Config.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another OpenTracy running? pick another with --addr)", s.opts.Config.Addr, err)
	}
	addr := ln.Addr().String()
	allowed := allowedHosts(s.opts.Config, addr)
	s.allowed.Store(&allowed)

	bgCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	if s.traces != nil {
		if err := s.traces.start(bgCtx); err != nil {
			stop()
			ln.Close()
			return err
		}
	}
	srv := &h1serve.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No write timeout: streamed completions and /api/events stay open as long as they need.
		Logger:      s.log,
		BaseContext: bgCtx,
	}

	s.mu.Lock()
	s.addr, s.httpSrv, s.stop = addr, srv, stop
	s.serveErr = make(chan error, 1)
	s.mu.Unlock()

	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		s.publishStats(bgCtx)
	}()
	if s.traces != nil && s.opts.Config.TraceRetention > 0 {
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			s.enforceRetention(bgCtx, s.traces.store, s.opts.Config.TraceRetention, time.Hour)
		}()
	}
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, h1serve.ErrServerClosed) {
			err = nil
		}
		s.serveErr <- err
	}()
	if !s.opts.Config.IsLoopback() {
		s.log.Warn("listening beyond this machine: anyone who can reach this address and has the gateway key can use your provider keys", "addr", addr)
	}
	s.log.Info("listening", "addr", addr, "shell", s.opts.Shell)
	return nil
}

// Addr is the bound address (host:port), known after Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// URLs are the addresses a user needs, known after Start.
type URLs struct {
	// UI opens the app in a browser and logs it in (it carries the UI token).
	UI string
	// Gateway is the OpenAI-compatible base URL.
	Gateway string
	// Anthropic is the Anthropic-compatible base URL.
	Anthropic string
}

// URLs returns the user-facing URLs of the started server.
func (s *Server) URLs() URLs {
	base := "http://" + s.Addr()
	return URLs{
		UI:        base + "/?" + tokenParam + "=" + s.opts.Secrets.UIToken.Reveal(),
		Gateway:   base + "/v1",
		Anthropic: base + "/anthropic",
	}
}

// GatewayKey returns the key clients must send.
func (s *Server) GatewayKey() config.Secret { return s.gatewayKey }

// Done is closed with the serve error (nil after a clean Shutdown) when the listener stops.
func (s *Server) Done() <-chan error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.serveErr
}

// Shutdown stops accepting requests, ends event streams, and waits for in-flight requests until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv, stop := s.httpSrv, s.stop
	s.mu.Unlock()
	// Running jobs stop first: their records say interrupted, and a restart offers to resume them.
	err := s.engine.jobs.close(ctx)
	// Event streams never go idle on their own: end them first so Shutdown does not wait on them.
	s.hub.Close()
	if srv != nil {
		if serr := srv.Shutdown(ctx); serr != nil {
			err = serr
		}
	}
	if s.traces != nil {
		// After the last request: drain recorded traces into the store.
		if terr := s.traces.close(ctx); terr != nil && err == nil {
			err = terr
		}
	}
	if stop != nil {
		stop()
	}
	s.bg.Wait()
	s.parts.local.Close() // after the last request: frees the loaded models
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
