// Package hubtest is a fake Hugging Face Hub on loopback, for tests of code that downloads
// models: the revision API the downloader reads (files, sizes, LFS checksums, gated answers) and
// each repository's files at its commit, served by a downloadtest.Server so that faults can be
// injected and requests inspected.
package hubtest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"opentracy/gpu/download/downloadtest"
)

// Repo is a repository on the fake Hub.
type Repo struct {
	ID     string // "owner/name"
	Commit string // 40 hex digits
	Files  map[string][]byte
	// LFS names the files stored in LFS, which the API lists with a sha256; nil means the
	// .safetensors files.
	LFS map[string]bool
	// SHA256 overrides a listed sha256 (a corrupt upload: the content does not match).
	SHA256 map[string]string
	// Gated: the API and the files answer 401 without a token and 403 with one. GatedFiles: only
	// the files do (some gated repositories list their files to anyone).
	Gated, GatedFiles bool
}

// isLFS reports whether the API lists name with a sha256.
func (r *Repo) isLFS(name string) bool {
	if r.LFS == nil {
		return strings.HasSuffix(name, ".safetensors")
	}
	return r.LFS[name]
}

// Hub speaks the part of the Hub API the downloader uses.
type Hub struct {
	*downloadtest.Server

	mu    sync.Mutex
	repos map[string]*Repo
}

// New starts a fake Hub; its URL is the endpoint to download from.
func New(t testing.TB) *Hub {
	h := &Hub{Server: downloadtest.New(t), repos: map[string]*Repo{}}
	h.Mux.HandleFunc("GET /api/models/{owner}/{name}/revision/{rev}", h.revision)
	// Reached only for files not put on the server: missing or gated ones.
	h.Mux.HandleFunc("GET /{owner}/{name}/resolve/{rev}/{file}", func(w http.ResponseWriter, r *http.Request) {
		if rp := h.repo(r); rp != nil && (rp.Gated || rp.GatedFiles) {
			refuse(w, r, rp)
			return
		}
		w.Header().Set("X-Error-Code", "EntryNotFound")
		http.Error(w, "Entry not found", http.StatusNotFound)
	})
	return h
}

// Add puts a repository on the Hub and serves its files at its commit (unless gated).
func (h *Hub) Add(r *Repo) {
	h.mu.Lock()
	h.repos[r.ID] = r
	h.mu.Unlock()
	if r.Gated || r.GatedFiles {
		return
	}
	for name, data := range r.Files {
		h.Put(h.FilePath(r, name), data)
	}
}

// FilePath is where the Hub serves a file of r at its commit.
func (h *Hub) FilePath(r *Repo, name string) string {
	return "/" + r.ID + "/resolve/" + r.Commit + "/" + name
}

// FileRequests are the requests made for a file of r.
func (h *Hub) FileRequests(r *Repo, name string) []downloadtest.Request {
	return h.Requests(h.FilePath(r, name))
}

func (h *Hub) repo(r *http.Request) *Repo {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.repos[r.PathValue("owner")+"/"+r.PathValue("name")]
}

// revision answers GET /api/models/{repo}/revision/{rev} as the Hub does.
func (h *Hub) revision(w http.ResponseWriter, r *http.Request) {
	rp := h.repo(r)
	if rp == nil {
		w.Header().Set("X-Error-Code", "RepoNotFound")
		http.Error(w, `{"error":"Repository not found"}`, http.StatusNotFound)
		return
	}
	if rp.Gated {
		refuse(w, r, rp)
		return
	}
	if rev := r.PathValue("rev"); rev != "main" && rev != rp.Commit {
		w.Header().Set("X-Error-Code", "RevisionNotFound")
		http.Error(w, `{"error":"Invalid rev id: `+rev+`"}`, http.StatusNotFound)
		return
	}
	type lfs struct {
		SHA256      string `json:"sha256"`
		Size        int    `json:"size"`
		PointerSize int    `json:"pointerSize"`
	}
	type sibling struct {
		RFilename string `json:"rfilename"`
		Size      int    `json:"size"`
		BlobID    string `json:"blobId"`
		LFS       *lfs   `json:"lfs,omitempty"`
	}
	info := struct {
		ID       string    `json:"id"`
		SHA      string    `json:"sha"`
		Siblings []sibling `json:"siblings"`
	}{ID: rp.ID, SHA: rp.Commit}
	for name, data := range rp.Files {
		s := sibling{RFilename: name, Size: len(data), BlobID: "0123456789abcdef0123456789abcdef01234567"}
		if rp.isLFS(name) {
			sum := sha256.Sum256(data)
			listed := hex.EncodeToString(sum[:])
			if o, ok := rp.SHA256[name]; ok {
				listed = o
			}
			s.LFS = &lfs{SHA256: listed, Size: len(data), PointerSize: 134}
		}
		info.Siblings = append(info.Siblings, s)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(info)
}

// refuse answers like the Hub does for a gated repository nobody here has been granted.
func refuse(w http.ResponseWriter, r *http.Request, rp *Repo) {
	w.Header().Set("X-Error-Code", "GatedRepo")
	if r.Header.Get("Authorization") == "" {
		w.Header().Set("X-Error-Message", "Access to model "+rp.ID+" is restricted. You must have access to it and be authenticated to access it. Please log in.")
		http.Error(w, "", http.StatusUnauthorized)
		return
	}
	w.Header().Set("X-Error-Message", "Access to model "+rp.ID+" is restricted and you are not in the authorized list.")
	http.Error(w, "", http.StatusForbidden)
}
