package config

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func envOf(m map[string]string) Environment {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadDefaults(t *testing.T) {
	cfg, err := Load(Flags{}, envOf(map[string]string{"HOME": "/home/u"}))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Addr: "127.0.0.1:8787", DataDir: "/home/u/.local/share/opentracy", LogLevel: "info"}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if !cfg.IsLoopback() {
		t.Error("default address must be loopback")
	}
}

func TestLoadPrecedence(t *testing.T) {
	file := writeConfig(t, "addr: 127.0.0.1:9000\ndata_dir: ~/from-file\nlog_level: warn\ngateway_key: from-the-config-file\nallowed_hosts: [tracy.local:9000]\n")
	tests := []struct {
		name  string
		flags Flags
		env   map[string]string
		want  Config
	}{
		{
			name:  "file over defaults",
			flags: Flags{ConfigFile: file},
			env:   map[string]string{"HOME": "/h"},
			want: Config{Addr: "127.0.0.1:9000", DataDir: "/h/from-file", LogLevel: "warn", GatewayKey: "from-the-config-file",
				AllowedHosts: []string{"tracy.local:9000"}, File: file, GatewayKeySource: "config"},
		},
		{
			name:  "env over file",
			flags: Flags{ConfigFile: file},
			env:   map[string]string{"HOME": "/h", EnvAddr: "127.0.0.1:9100", EnvDataDir: "/env", EnvGatewayKey: "from-the-environment", EnvLogLevel: "debug"},
			want: Config{Addr: "127.0.0.1:9100", DataDir: "/env", LogLevel: "debug", GatewayKey: "from-the-environment",
				AllowedHosts: []string{"tracy.local:9000"}, File: file, GatewayKeySource: "env"},
		},
		{
			name:  "flags over env",
			flags: Flags{ConfigFile: file, Addr: "127.0.0.1:9200", DataDir: "/flag", GatewayKey: "from-the-command-line", LogLevel: "error"},
			env:   map[string]string{"HOME": "/h", EnvAddr: "127.0.0.1:9100", EnvGatewayKey: "from-the-environment"},
			want: Config{Addr: "127.0.0.1:9200", DataDir: "/flag", LogLevel: "error", GatewayKey: "from-the-command-line",
				AllowedHosts: []string{"tracy.local:9000"}, File: file, GatewayKeySource: "flag"},
		},
		{
			name: "config file from the environment",
			env:  map[string]string{"HOME": "/h", EnvConfig: file},
			want: Config{Addr: "127.0.0.1:9000", DataDir: "/h/from-file", LogLevel: "warn", GatewayKey: "from-the-config-file",
				AllowedHosts: []string{"tracy.local:9000"}, File: file, GatewayKeySource: "config"},
		},
		{
			name: "XDG data home",
			env:  map[string]string{"HOME": "/h", "XDG_DATA_HOME": "/xdg", "XDG_CONFIG_HOME": t.TempDir()},
			want: Config{Addr: DefaultAddr, DataDir: "/xdg/opentracy", LogLevel: "info"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load(tt.flags, envOf(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadDefaultConfigFile(t *testing.T) {
	xdg := t.TempDir()
	if err := os.MkdirAll(filepath.Join(xdg, "opentracy"), 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(xdg, "opentracy", "config.yaml")
	if err := os.WriteFile(path, []byte("addr: 127.0.0.1:9999\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(Flags{}, envOf(map[string]string{"HOME": "/h", "XDG_CONFIG_HOME": xdg}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:9999" || cfg.File != path {
		t.Errorf("got addr %q from %q, want the default config file read", cfg.Addr, cfg.File)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		flags Flags
		want  string
	}{
		{"missing explicit file", Flags{ConfigFile: "/nonexistent/config.yaml"}, "read config"},
		{"unknown key", Flags{ConfigFile: writeConfig(t, "adr: 127.0.0.1:1\n")}, "field adr not found"},
		{"bad yaml", Flags{ConfigFile: writeConfig(t, "addr: [\n")}, "config "},
		{"wrong type", Flags{ConfigFile: writeConfig(t, "allowed_hosts: 3\n")}, "cannot unmarshal"},
		{"addr without port", Flags{Addr: "127.0.0.1"}, "want host:port"},
		{"addr without host", Flags{Addr: ":8787"}, "give a host"},
		{"bad log level", Flags{LogLevel: "loud"}, `log level "loud"`},
		{"short key", Flags{GatewayKey: "abc"}, "too short"},
		{"tiny retention", Flags{ConfigFile: writeConfig(t, "trace_retention: 5m\n")}, "at least 1h"},
		{"bad retention", Flags{ConfigFile: writeConfig(t, "trace_retention: soon\n")}, "`soon` into time.Duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.flags, envOf(map[string]string{"HOME": "/h", "XDG_CONFIG_HOME": t.TempDir()}))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestEmptyConfigFileIsValid(t *testing.T) {
	cfg, err := Load(Flags{ConfigFile: writeConfig(t, "# nothing set yet\n")}, envOf(map[string]string{"HOME": "/h"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != DefaultAddr {
		t.Errorf("addr = %q", cfg.Addr)
	}
}

func TestTraceRetention(t *testing.T) {
	cfg, err := Load(Flags{ConfigFile: writeConfig(t, "trace_retention: 2160h\n")}, envOf(map[string]string{"HOME": "/h"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TraceRetention != 90*24*time.Hour {
		t.Errorf("trace_retention = %v, want 90 days", cfg.TraceRetention)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:1": true, "localhost:1": true, "[::1]:1": true, "127.3.4.5:1": true,
		"0.0.0.0:1": false, "192.168.1.2:1": false, "[::]:1": false, "example.com:1": false,
	} {
		if got := (Config{Addr: addr}).IsLoopback(); got != want {
			t.Errorf("IsLoopback(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := Secret("ot-supersecretvalue")
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "key", s, "cfg", Config{GatewayKey: s})
	for _, out := range []string{s.String(), logged.String(), fmtAll(s), mustMarshal(t, s)} {
		if strings.Contains(out, "supersecret") {
			t.Errorf("secret leaked in %q", out)
		}
	}
	if s.Reveal() != "ot-supersecretvalue" {
		t.Error("Reveal must return the value")
	}
}
