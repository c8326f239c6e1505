package config

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestStorageDefaultsToSQLite(t *testing.T) {
	cfg, err := Load(Flags{}, envOf(map[string]string{"HOME": "/h", "XDG_CONFIG_HOME": t.TempDir()}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Storage != "" || cfg.StorageBackend() != StorageSQLite {
		t.Errorf("storage = %q, backend %q; want unset and sqlite", cfg.Storage, cfg.StorageBackend())
	}
	want := ClickHouse{Address: "127.0.0.1:9000", Database: "opentracy", User: "default"}
	if diff := cmp.Diff(want, cfg.ClickHouse.WithDefaults()); diff != "" {
		t.Errorf("clickhouse defaults (-want +got):\n%s", diff)
	}
}

func TestStorageFromFileAndEnvironment(t *testing.T) {
	file := writeConfig(t, `storage: clickhouse
clickhouse:
  address: ch.internal:9440
  database: traces_prod
  user: writer
  password: from-the-file
`)
	tests := []struct {
		name string
		env  map[string]string
		want ClickHouse
	}{
		{"file", nil, ClickHouse{Address: "ch.internal:9440", Database: "traces_prod", User: "writer", Password: "from-the-file"}},
		{"environment wins", map[string]string{
			EnvClickHouseAddr: "ch2.internal:9000", EnvClickHouseDatabase: "other", EnvClickHouseUser: "u",
			EnvClickHousePassword: "from-the-env",
		}, ClickHouse{Address: "ch2.internal:9000", Database: "other", User: "u", Password: "from-the-env"}},
		{"empty variables are ignored", map[string]string{EnvClickHouseAddr: "", EnvClickHousePassword: ""},
			ClickHouse{Address: "ch.internal:9440", Database: "traces_prod", User: "writer", Password: "from-the-file"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"HOME": "/h"}
			for k, v := range tc.env {
				env[k] = v
			}
			cfg, err := Load(Flags{ConfigFile: file}, envOf(env))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.StorageBackend() != StorageClickHouse {
				t.Errorf("storage = %q", cfg.StorageBackend())
			}
			if diff := cmp.Diff(tc.want, cfg.ClickHouse); diff != "" {
				t.Errorf("clickhouse (-want +got):\n%s", diff)
			}
		})
	}

	// OPENTRACY_STORAGE picks the backend without a file; the section then takes its defaults.
	cfg, err := Load(Flags{}, envOf(map[string]string{"HOME": "/h", "XDG_CONFIG_HOME": t.TempDir(), EnvStorage: "clickhouse"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.StorageBackend() != StorageClickHouse || cfg.ClickHouse.WithDefaults().Address != DefaultClickHouseAddress {
		t.Errorf("storage %q, clickhouse %+v", cfg.StorageBackend(), cfg.ClickHouse.WithDefaults())
	}
}

func TestStorageErrors(t *testing.T) {
	tests := []struct {
		name, file string
		env        map[string]string
		want       string
	}{
		{"unknown storage", "storage: postgres\n", nil, `storage "postgres": want sqlite (the default) or clickhouse`},
		{"unknown storage from env", "", map[string]string{EnvStorage: "mongo"}, `storage "mongo"`},
		{"address without port", "storage: clickhouse\nclickhouse: {address: localhost}\n", nil, `clickhouse address "localhost": want host:port`},
		{"address without host", "storage: clickhouse\nclickhouse: {address: ':9000'}\n", nil, "want host:port"},
		{"bad database", "storage: clickhouse\nclickhouse: {database: 'x`; drop'}\n", nil, "clickhouse database"},
		{"unknown key", "clickhouse: {adress: x}\n", nil, "field adress not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"HOME": "/h", "XDG_CONFIG_HOME": t.TempDir()}
			for k, v := range tc.env {
				env[k] = v
			}
			flags := Flags{}
			if tc.file != "" {
				flags.ConfigFile = writeConfig(t, tc.file)
			}
			_, err := Load(flags, envOf(env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	// The clickhouse section is only checked when it is used.
	if _, err := Load(Flags{ConfigFile: writeConfig(t, "clickhouse: {address: nonsense}\n")}, envOf(map[string]string{"HOME": "/h"})); err != nil {
		t.Errorf("unused clickhouse section: %v", err)
	}
}

func TestClickHousePasswordNeverPrints(t *testing.T) {
	cfg, err := Load(Flags{ConfigFile: writeConfig(t, "storage: clickhouse\nclickhouse: {password: hunter2-supersecret}\n")},
		envOf(map[string]string{"HOME": "/h"}))
	if err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "cfg", cfg, "clickhouse", cfg.ClickHouse)
	for _, out := range []string{logged.String(), fmt.Sprintf("%v %+v %#v", cfg, cfg.ClickHouse, cfg.ClickHouse)} {
		if strings.Contains(out, "supersecret") {
			t.Errorf("password leaked in %q", out)
		}
	}
	if cfg.ClickHouse.Password.Reveal() != "hunter2-supersecret" {
		t.Error("Reveal must return the password")
	}
}
