package config

import (
	"fmt"
	"net"
	"regexp"
)

// Trace storage backends (Config.Storage).
const (
	// StorageSQLite keeps traces in a file in the data dir: the default, nothing to run.
	StorageSQLite = "sqlite"
	// StorageClickHouse sends traces to a ClickHouse server (Config.ClickHouse).
	StorageClickHouse = "clickhouse"
)

// Defaults of the clickhouse section.
const (
	DefaultClickHouseAddress  = "127.0.0.1:9000"
	DefaultClickHouseDatabase = "opentracy"
	DefaultClickHouseUser     = "default"
)

// Environment variables for the trace storage, read by Load.
const (
	EnvStorage            = "OPENTRACY_STORAGE"
	EnvClickHouseAddr     = "OPENTRACY_CLICKHOUSE_ADDR"
	EnvClickHouseDatabase = "OPENTRACY_CLICKHOUSE_DATABASE"
	EnvClickHouseUser     = "OPENTRACY_CLICKHOUSE_USER"
	EnvClickHousePassword = "OPENTRACY_CLICKHOUSE_PASSWORD"
)

// ClickHouse is the `clickhouse:` section, used when storage is clickhouse; empty fields take the
// defaults shown (WithDefaults).
type ClickHouse struct {
	// Address is the host:port of the server's native protocol (127.0.0.1:9000), not its HTTP port.
	Address string `yaml:"address"`
	// Database is created when missing (opentracy).
	Database string `yaml:"database"`
	// User and Password authenticate (default, no password).
	User     string `yaml:"user"`
	Password Secret `yaml:"password"`
}

// WithDefaults returns c with its empty fields set to the defaults. Load leaves them empty, so
// that the configuration shows what was set.
func (c ClickHouse) WithDefaults() ClickHouse {
	if c.Address == "" {
		c.Address = DefaultClickHouseAddress
	}
	if c.Database == "" {
		c.Database = DefaultClickHouseDatabase
	}
	if c.User == "" {
		c.User = DefaultClickHouseUser
	}
	return c
}

// StorageBackend is the trace storage in effect: Storage, or sqlite when unset.
func (c Config) StorageBackend() string {
	if c.Storage == "" {
		return StorageSQLite
	}
	return c.Storage
}

// loadStorage applies the storage environment variables over the file and validates the result.
func (c *Config) loadStorage(env Environment) error {
	set := func(dst *string, key string) {
		if v, ok := env(key); ok && v != "" {
			*dst = v
		}
	}
	set(&c.Storage, EnvStorage)
	set(&c.ClickHouse.Address, EnvClickHouseAddr)
	set(&c.ClickHouse.Database, EnvClickHouseDatabase)
	set(&c.ClickHouse.User, EnvClickHouseUser)
	if v, ok := env(EnvClickHousePassword); ok && v != "" {
		c.ClickHouse.Password = Secret(v)
	}
	return c.ValidateStorage()
}

// The store splices the database name into SQL, so it must be a plain identifier.
var clickHouseDatabase = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// ValidateStorage checks the storage choice and, for clickhouse, its section.
func (c Config) ValidateStorage() error {
	switch c.StorageBackend() {
	case StorageSQLite:
		return nil
	case StorageClickHouse:
	default:
		return fmt.Errorf("storage %q: want %s (the default) or %s", c.Storage, StorageSQLite, StorageClickHouse)
	}
	ch := c.ClickHouse.WithDefaults()
	host, port, err := net.SplitHostPort(ch.Address)
	if err != nil {
		return fmt.Errorf("clickhouse address %q: want host:port, e.g. %s: %w", ch.Address, DefaultClickHouseAddress, err)
	}
	if host == "" || port == "" {
		return fmt.Errorf("clickhouse address %q: want host:port, e.g. %s", ch.Address, DefaultClickHouseAddress)
	}
	if !clickHouseDatabase.MatchString(ch.Database) {
		return fmt.Errorf("clickhouse database %q: use letters, digits and underscores (not starting with a digit)", ch.Database)
	}
	return nil
}
