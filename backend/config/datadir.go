package config

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"opentracy/backend/atomicfile"
)

// Modes of what the data dir holds: only the user who runs OpenTracy may read traces or keys.
const (
	DirMode    fs.FileMode = 0o700
	SecretMode fs.FileMode = 0o600
)

// SecretsFile is the name, inside the data dir, of the file holding generated secrets.
const SecretsFile = "secrets.json"

// GatewayKeyPrefix starts every generated gateway key, so a leaked key is easy to recognise.
const GatewayKeyPrefix = "ot-"

// Secrets are generated on first run and kept in the data dir with mode 0600.
type Secrets struct {
	// GatewayKey authenticates clients of /v1 and /anthropic.
	GatewayKey Secret
	// UIToken authenticates the management API (/api) used by the UI.
	UIToken Secret
}

type secretsFile struct {
	GatewayKey string `json:"gateway_key"`
	UIToken    string `json:"ui_token"`
}

// PrepareDataDir creates the data dir with mode 0700, or tightens the mode of an existing one.
func PrepareDataDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	return tighten(dir, DirMode, log)
}

// LoadSecrets reads the data dir's secrets, generating and saving any that are missing.
func LoadSecrets(dir string, log *slog.Logger) (Secrets, error) {
	path := filepath.Join(dir, SecretsFile)
	var f secretsFile
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &f); err != nil {
			return Secrets{}, fmt.Errorf("read %s: %w (move it away to generate new secrets)", path, err)
		}
		if err := tighten(path, SecretMode, log); err != nil {
			return Secrets{}, err
		}
	case errors.Is(err, os.ErrNotExist):
	default:
		return Secrets{}, fmt.Errorf("read secrets: %w", err)
	}

	changed := false
	if f.GatewayKey == "" {
		f.GatewayKey, changed = GatewayKeyPrefix+randomToken(), true
	}
	if f.UIToken == "" {
		f.UIToken, changed = randomToken(), true
	}
	if changed {
		data, err := json.MarshalIndent(f, "", "  ")
		if err != nil {
			return Secrets{}, fmt.Errorf("encode secrets: %w", err)
		}
		if err := atomicfile.Write(path, append(data, '\n'), SecretMode); err != nil {
			return Secrets{}, fmt.Errorf("save secrets: %w", err)
		}
		log.Info("generated secrets", "file", path)
	}
	return Secrets{GatewayKey: Secret(f.GatewayKey), UIToken: Secret(f.UIToken)}, nil
}

// tighten removes permission bits beyond want, warning because someone loosened them.
func tighten(path string, want fs.FileMode, log *slog.Logger) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Mode().Perm()&^want == 0 {
		return nil
	}
	log.Warn("tightening permissions", "path", path, "from", st.Mode().Perm().String(), "to", want.String())
	if err := os.Chmod(path, want); err != nil {
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	return nil
}

// randomToken returns 256 random bits, URL-safe.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it panics on an unusable source)
	return base64.RawURLEncoding.EncodeToString(b)
}
