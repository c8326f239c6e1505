package anthropic

import (
	"errors"
	"flag"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"opentracy/backend/config"
	"opentracy/backend/providers"
	"opentracy/backend/providers/providertest"
)

// update rewrites the *.golden files from the current output; review the diff before committing.
var update = flag.Bool("update", false, "rewrite golden files")

// testNow is the clock every test provider and stream uses.
var testNow = time.Unix(1700000000, 0)

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := providers.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// body is an upstream response body that records Close and fails reads after it, like a real
// connection.
type body struct {
	r      io.Reader
	closed atomic.Bool
}

func newBody(r io.Reader) *body { return &body{r: r} }

func (b *body) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errors.New("read on closed body")
	}
	return b.r.Read(p)
}

func (b *body) Close() error {
	b.closed.Store(true)
	if c, ok := b.r.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// newTestProvider points a provider at base with a fixed key and clock.
func newTestProvider(t *testing.T, base string, headers map[string]string) *Provider {
	t.Helper()
	p, err := New(config.Provider{Name: "claude", Type: Type, BaseURL: base, APIKey: "sk-ant-test", Headers: headers},
		http.DefaultClient, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	p.now = func() time.Time { return testNow }
	return p
}

// Shared with the other translating adapters' tests.
func fixture(t *testing.T, name string) []byte       { return providertest.Fixture(t, name) }
func jsonDiff(t *testing.T, want, got []byte) string { return providertest.JSONDiff(t, want, got) }
func envMap(m map[string]string) config.Environment  { return providertest.Env(m) }
func readAllSmall(r io.Reader) ([]byte, error)       { return providertest.ReadAllSmall(r) }

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	providertest.CheckGolden(t, name, got, *update)
}
