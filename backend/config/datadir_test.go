package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fmtAll(v any) string { return fmt.Sprintf("%v %s %+v %#v", v, v, v, v) }

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestPrepareDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "opentracy")
	if err := PrepareDataDir(dir, discard()); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, dir); m != DirMode {
		t.Errorf("new data dir mode = %v, want %v", m, DirMode)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := PrepareDataDir(dir, discard()); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, dir); m != DirMode {
		t.Errorf("loosened data dir mode = %v after prepare, want %v", m, DirMode)
	}
}

func TestLoadSecretsGeneratesOnceAndPersists(t *testing.T) {
	dir := t.TempDir()
	first, err := LoadSecrets(dir, discard())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(first.GatewayKey.Reveal(), GatewayKeyPrefix) || len(first.GatewayKey.Reveal()) < 40 {
		t.Errorf("gateway key %q: want %q and 256 random bits", first.GatewayKey.Reveal(), GatewayKeyPrefix)
	}
	if len(first.UIToken.Reveal()) < 40 || first.UIToken == first.GatewayKey {
		t.Errorf("UI token must be long and distinct from the gateway key")
	}
	path := filepath.Join(dir, SecretsFile)
	if m := mode(t, path); m != SecretMode {
		t.Errorf("secrets file mode = %v, want %v", m, SecretMode)
	}
	second, err := LoadSecrets(dir, discard())
	if err != nil {
		t.Fatal(err)
	}
	if second != first {
		t.Error("secrets changed across loads: they must be generated on first run only")
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSecrets(dir, discard()); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, path); m != SecretMode {
		t.Errorf("loosened secrets file mode = %v after load, want %v", m, SecretMode)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

func TestLoadSecretsFillsMissingField(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, SecretsFile)
	if err := os.WriteFile(path, []byte(`{"gateway_key":"ot-kept-from-before-0123456789"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := LoadSecrets(dir, discard())
	if err != nil {
		t.Fatal(err)
	}
	if s.GatewayKey.Reveal() != "ot-kept-from-before-0123456789" {
		t.Errorf("existing gateway key replaced: %q", s.GatewayKey.Reveal())
	}
	if s.UIToken == "" {
		t.Error("missing UI token not generated")
	}
}

func TestLoadSecretsCorruptFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, SecretsFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadSecrets(dir, discard())
	if err == nil || !strings.Contains(err.Error(), "move it away") {
		t.Fatalf("err = %v, want a clear error that keeps the file", err)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, SecretsFile)); string(data) != "{not json" {
		t.Error("a corrupt secrets file must not be overwritten")
	}
}
