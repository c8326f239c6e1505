// Package app is the desktop shell: a Wails window whose AssetServer mounts the same handler that
// `opentracy serve` exposes, while the gateway keeps listening on its TCP address for other apps.
package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/wailsapp/wails/v2"
	"github.com/wailsapp/wails/v2/pkg/options"
	"github.com/wailsapp/wails/v2/pkg/options/assetserver"
	"github.com/wailsapp/wails/v2/pkg/options/linux"
	wailsruntime "github.com/wailsapp/wails/v2/pkg/runtime"

	"opentracy/backend/server"
)

// displayMissing explains why no window can be opened here, or returns "". On Linux a window
// needs an X11 or Wayland display; without one GTK would abort the process.
func displayMissing(goos string, getenv func(string) string) string {
	if goos == "linux" && getenv("DISPLAY") == "" && getenv("WAYLAND_DISPLAY") == "" {
		return "No display found (DISPLAY and WAYLAND_DISPLAY are unset)"
	}
	return ""
}

// Options configure the window.
type Options struct {
	// Handler serves the window: the server's DesktopHandler, the same routes as its TCP address.
	Handler http.Handler
	// DataDir identifies the instance: a second launch on the same data dir focuses the first window.
	DataDir string
	// Icon is the window icon (PNG).
	Icon   []byte
	Logger *slog.Logger
}

// Run opens the window and blocks until it closes.
func Run(ctx context.Context, opts Options) error {
	log := opts.Logger.With(server.LogKeySubsystem, "desktop")
	win := &window{quit: ctx}
	err := wails.Run(&options.App{
		Title:            "OpenTracy",
		Width:            1280,
		Height:           860,
		MinWidth:         960,
		MinHeight:        600,
		BackgroundColour: &options.RGBA{R: 36, G: 36, B: 36, A: 255},
		AssetServer:      &assetserver.Options{Handler: opts.Handler},
		Logger:           wailsLogger{log},
		OnStartup:        win.started,
		OnDomReady:       selfTest(log), // nil unless built with -tags selftest
		OnShutdown: func(context.Context) {
			log.Info("window closed")
		},
		SingleInstanceLock: &options.SingleInstanceLock{
			UniqueId: instanceID(opts.DataDir),
			// The second process exits; bring this window to the front instead.
			OnSecondInstanceLaunch: func(options.SecondInstanceData) { win.focus() },
		},
		Linux: &linux.Options{
			Icon:             opts.Icon,
			ProgramName:      "opentracy",
			WebviewGpuPolicy: linux.WebviewGpuPolicyOnDemand,
		},
	})
	if err != nil {
		return fmt.Errorf("desktop window: %w", err)
	}
	return nil
}

// window holds the Wails runtime context, which exists only once the window has started.
type window struct {
	quit context.Context // closing the window when this ends (SIGTERM, Ctrl-C)

	mu  sync.Mutex
	ctx context.Context
}

func (w *window) started(ctx context.Context) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ctx = ctx
	go func() {
		<-w.quit.Done()
		wailsruntime.Quit(ctx)
	}()
}

func (w *window) focus() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ctx != nil {
		wailsruntime.WindowUnminimise(w.ctx)
		wailsruntime.WindowShow(w.ctx)
	}
}

func instanceID(dataDir string) string {
	sum := sha256.Sum256([]byte(dataDir))
	return "dev.opentracy.desktop." + hex.EncodeToString(sum[:8])
}
