//go:build selftest

package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	wailsruntime "github.com/wailsapp/wails/v2/pkg/runtime"
)

// selfTestEvent carries the page's report back to Go.
const selfTestEvent = "opentracy:selftest"

// selfTestJS waits for the app frame, the connection card (which needs an authenticated /api/info
// through the AssetServer), a hello on a fresh /api/events stream and the UI's own live-connection
// indicator, then reports.
const selfTestJS = `(async () => {
  const report = (r) => window.runtime.EventsEmit(%q, JSON.stringify(r));
  const deadline = Date.now() + 30000;
  const until = async (f) => { while (Date.now() < deadline) { const v = f(); if (v) return v; await new Promise(r => setTimeout(r, 100)); } return null; };
  try {
    const nav = await until(() => document.querySelector('nav[aria-label="Main navigation"]'));
    const byLabel = (name) => document.querySelector('[aria-label="' + name + '"]') ||
      (Array.from(document.querySelectorAll('label')).find(l => l.textContent.trim() === name) || {}).control;
    const baseURL = await until(() => { const e = byLabel('Gateway base URL'); const v = e ? ('value' in e ? e.value : e.textContent).trim() : ''; return v.endsWith('/v1') ? v : null; });
    const hello = await new Promise((resolve) => {
      const es = new EventSource('/api/events');
      const t = setTimeout(() => { es.close(); resolve(false); }, 10000);
      es.addEventListener('hello', () => { clearTimeout(t); es.close(); resolve(true); });
    });
    const indicator = await until(() => { const e = document.querySelector('[role="status"][aria-label^="Server connection"]'); return e && e.getAttribute('aria-label').endsWith('Live') ? e.getAttribute('aria-label') : null; })
      || (document.querySelector('[role="status"][aria-label^="Server connection"]') || {getAttribute: () => 'missing'}).getAttribute('aria-label');
    const links = nav ? Array.from(nav.querySelectorAll('a')).map(a => a.textContent.trim()) : [];
    report({ok: !!nav && !!baseURL && hello && /Live$/.test(indicator), title: document.title, links, baseURL, events: hello, indicator});
  } catch (e) { report({ok: false, error: String(e)}); }
})();`

// selfTest prints one "SELFTEST {json}" line once the UI has rendered, keeps the window open
// OPENTRACY_SELFTEST_HOLD seconds (default 5) for a screenshot, then quits. Without a report within
// 60 s it prints "SELFTEST timeout" and exits with status 1.
func selfTest(log *slog.Logger) func(context.Context) {
	return func(ctx context.Context) {
		hold := 5 * time.Second
		if v, err := strconv.Atoi(os.Getenv("OPENTRACY_SELFTEST_HOLD")); err == nil {
			hold = time.Duration(v) * time.Second
		}
		reported := make(chan struct{})
		wailsruntime.EventsOnce(ctx, selfTestEvent, func(data ...any) {
			close(reported)
			fmt.Println(append([]any{"SELFTEST"}, data...)...)
			time.AfterFunc(hold, func() { wailsruntime.Quit(ctx) })
		})
		go func() {
			select {
			case <-reported:
			case <-time.After(60 * time.Second):
				fmt.Println("SELFTEST timeout")
				os.Exit(1)
			}
		}()
		log.Info("self-test: running check in the window")
		wailsruntime.WindowExecJS(ctx, fmt.Sprintf(selfTestJS, selfTestEvent))
	}
}
