// Package config loads the settings of an OpenTracy instance from, in rising precedence: built-in
// defaults, a YAML file, OPENTRACY_* environment variables and command-line flags.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"opentracy/backend/pricing"
)

// DefaultAddr is loopback only: nothing outside this machine reaches the gateway unless asked to.
const DefaultAddr = "127.0.0.1:8787"

// Environment variables read by Load.
const (
	EnvConfig     = "OPENTRACY_CONFIG"
	EnvAddr       = "OPENTRACY_ADDR"
	EnvDataDir    = "OPENTRACY_DATA_DIR"
	EnvGatewayKey = "OPENTRACY_GATEWAY_KEY"
	EnvLogLevel   = "OPENTRACY_LOG_LEVEL"
)

// Config is the YAML file's schema (see README "Configuration").
type Config struct {
	// Addr is the host:port the gateway, API and UI listen on.
	Addr string `yaml:"addr"`
	// DataDir holds the database, secrets and models. Created with mode 0700.
	DataDir string `yaml:"data_dir"`
	// Storage is where traces are kept: sqlite (the default, a file in DataDir) or clickhouse
	// (the server in ClickHouse; see storage.go).
	Storage    string     `yaml:"storage"`
	ClickHouse ClickHouse `yaml:"clickhouse"`
	// GatewayKey, when set, replaces the key generated on first run.
	GatewayKey Secret `yaml:"gateway_key"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
	// AllowedHosts are extra Host header values accepted besides the listen address and its
	// loopback names, e.g. a name under which a reverse proxy reaches this instance.
	AllowedHosts []string `yaml:"allowed_hosts"`
	// Providers are the upstream APIs. When none is configured, every provider whose usual key
	// variable is set (OPENAI_API_KEY, ANTHROPIC_API_KEY, …) is used with its defaults.
	Providers []Provider `yaml:"providers"`
	// Aliases map a name apps call to target models; run-time edits in the UI take precedence.
	Aliases map[string]Alias `yaml:"aliases"`
	// Prices override the built-in price table, keyed by "provider/model" or "model".
	Prices map[string]pricing.Price `yaml:"prices"`
	// Gateway tunes retries, timeouts and limits.
	Gateway Gateway `yaml:"gateway"`
	// TraceRetention deletes traces older than this (e.g. 2160h for 90 days). Zero, the default,
	// keeps them forever: traces are the raw material of datasets and distillation.
	TraceRetention time.Duration `yaml:"trace_retention"`
	// Engine chooses the student engine's backend and GPU runtime (engine.go).
	Engine Engine `yaml:"engine"`
	// HuggingFace is where models are downloaded from.
	HuggingFace HuggingFace `yaml:"huggingface"`

	// File is the config file that was read, if any.
	File string `yaml:"-"`
	// GatewayKeySource tells which layer set GatewayKey ("" when none did).
	GatewayKeySource string `yaml:"-"`
}

// Flags are the command-line overrides; empty strings mean "not given".
type Flags struct {
	ConfigFile string
	Addr       string
	DataDir    string
	GatewayKey string
	LogLevel   string
}

// Environment looks up an environment variable (os.LookupEnv in production, a map in tests).
type Environment func(key string) (string, bool)

// Load builds the configuration. The file is the --config flag, else $OPENTRACY_CONFIG, else
// $XDG_CONFIG_HOME/opentracy/config.yaml when it exists.
func Load(flags Flags, env Environment) (Config, error) {
	cfg := Config{Addr: DefaultAddr, LogLevel: "info"}

	path, explicit := flags.ConfigFile, flags.ConfigFile != ""
	if !explicit {
		path, explicit = env(EnvConfig)
	}
	if !explicit {
		path = filepath.Join(configHome(env), "opentracy", "config.yaml")
	}
	if path != "" {
		if err := cfg.readFile(path); err != nil {
			if explicit || !errors.Is(err, os.ErrNotExist) {
				return Config{}, err
			}
		}
	}

	override := func(dst *string, flag, envKey string) {
		if v, ok := env(envKey); ok && v != "" {
			*dst = v
		}
		if flag != "" {
			*dst = flag
		}
	}
	override(&cfg.Addr, flags.Addr, EnvAddr)
	override(&cfg.DataDir, flags.DataDir, EnvDataDir)
	override(&cfg.LogLevel, flags.LogLevel, EnvLogLevel)
	if err := cfg.loadStorage(env); err != nil {
		return Config{}, err
	}
	if err := cfg.loadEngine(env); err != nil {
		return Config{}, err
	}
	if cfg.GatewayKey != "" {
		cfg.GatewayKeySource = "config"
	}
	if v, ok := env(EnvGatewayKey); ok && v != "" {
		cfg.GatewayKey, cfg.GatewayKeySource = Secret(v), "env"
	}
	if flags.GatewayKey != "" {
		cfg.GatewayKey, cfg.GatewayKeySource = Secret(flags.GatewayKey), "flag"
	}

	if cfg.DataDir == "" {
		cfg.DataDir = filepath.Join(dataHome(env), "opentracy")
	}
	cfg.DataDir = expandHome(cfg.DataDir, env)
	if err := cfg.validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func (c *Config) readFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true) // a misspelt key is an error, not a silently ignored setting
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config %s: %w", path, err)
	}
	c.File = path
	return nil
}

func (c *Config) validate() error {
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("addr %q: want host:port, e.g. %s: %w", c.Addr, DefaultAddr, err)
	}
	if host == "" {
		return fmt.Errorf("addr %q: give a host (127.0.0.1 keeps the gateway local)", c.Addr)
	}
	if port == "" {
		return fmt.Errorf("addr %q: give a port (0 picks a free one)", c.Addr)
	}
	if _, err := ParseLogLevel(c.LogLevel); err != nil {
		return err
	}
	if c.TraceRetention != 0 && c.TraceRetention < time.Hour {
		return fmt.Errorf("trace_retention %v: give 0 (keep forever) or at least 1h, e.g. 2160h for 90 days", c.TraceRetention)
	}
	names := map[string]bool{}
	for i, p := range c.Providers {
		if p.Type == "" {
			return fmt.Errorf("providers[%d]: give a type (openai, anthropic, groq, ollama, …)", i)
		}
		name := p.Name
		if name == "" {
			name = p.Type
		}
		if strings.Contains(name, "/") {
			return fmt.Errorf("provider %q: a name cannot contain '/'", name)
		}
		if names[name] {
			return fmt.Errorf("provider %q is configured twice: give one of them another name", name)
		}
		names[name] = true
	}
	if c.GatewayKey != "" && len(c.GatewayKey) < 16 {
		return fmt.Errorf("gateway key from %s is too short: use at least 16 characters", c.GatewayKeySource)
	}
	return nil
}

// ParseLogLevel maps a level name to slog's level.
func ParseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("log level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// IsLoopback reports whether the configured host only accepts connections from this machine.
func (c Config) IsLoopback() bool {
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func configHome(env Environment) string {
	if v, ok := env("XDG_CONFIG_HOME"); ok && v != "" {
		return v
	}
	if home, ok := env("HOME"); ok && home != "" {
		return filepath.Join(home, ".config")
	}
	return ""
}

func dataHome(env Environment) string {
	if v, ok := env("XDG_DATA_HOME"); ok && v != "" {
		return v
	}
	home, _ := env("HOME")
	return filepath.Join(home, ".local", "share")
}

func expandHome(path string, env Environment) string {
	if path == "~" || strings.HasPrefix(path, "~/") {
		home, _ := env("HOME")
		return filepath.Join(home, strings.TrimPrefix(path, "~"))
	}
	return path
}
