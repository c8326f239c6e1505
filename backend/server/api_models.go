package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"

	"opentracy/backend/api"
	"opentracy/backend/providers/local"
	"opentracy/gpu/download"
	"opentracy/gpu/hub"
)

func (s *Server) modelAPIRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/local-models", s.listLocalModels)
	mux.HandleFunc("POST /api/local-models/download", s.downloadModel)
	mux.HandleFunc("DELETE /api/local-models/download/{id}", s.cancelDownload)
	mux.HandleFunc("DELETE /api/local-models/{name}", s.deleteLocalModel)
}

func (s *Server) listLocalModels(w http.ResponseWriter, _ *http.Request) {
	out, err := s.localModels()
	if err != nil {
		s.log.Error("list local models", "err", err)
		openAIErrors.write(w, http.StatusInternalServerError, "server_error", "list_failed", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// localModels lists the model folders, the students, which are loaded and the downloads that
// run or did not finish.
func (s *Server) localModels() (api.LocalModels, error) {
	lp := s.parts.local
	out := api.LocalModels{Models: []api.LocalModel{}, Students: []api.LocalStudent{}, Provider: lp.Name()}
	out.Downloads = s.engine.jobs.list(func(j api.Job) bool { return j.Kind == api.JobModelDownload && j.State != api.JobDone })
	loaded := map[string]bool{}
	for _, m := range lp.Loaded() {
		loaded[m.Name] = true
	}
	downloading := map[string]bool{}
	for _, j := range out.Downloads {
		if j.State == api.JobRunning {
			downloading[j.Model] = true
		}
	}

	models, err := s.engine.hub.List()
	if err != nil {
		return api.LocalModels{}, err
	}
	for _, m := range models {
		item := api.LocalModel{
			Name: m.Name, Repo: m.Repo, Revision: m.Revision, Commit: m.Commit, Family: m.Family, Params: m.Params,
			SizeBytes: m.SizeBytes, Complete: m.Complete, Problem: m.Problem,
			Downloading: downloading[m.Name], Loaded: loaded[m.Name],
		}
		switch {
		case item.Downloading:
			item.Problem = "downloading"
		case m.Complete && !m.Supported():
			item.Problem = fmt.Sprintf("model type %q is not one the engine runs (qwen3, llama)", m.ModelType)
		}
		item.Ready = m.Complete && m.Supported() && !item.Downloading
		if !m.DownloadedAt.IsZero() {
			at := m.DownloadedAt
			item.DownloadedAt = &at
		}
		out.Models = append(out.Models, item)
	}

	all, err := lp.Registry().List()
	if err != nil {
		return api.LocalModels{}, err
	}
	for _, m := range all {
		if m.Kind != local.KindStudent {
			continue
		}
		st := api.LocalStudent{Name: m.Name, Base: m.BaseModel, Adapter: m.AdapterDir, Family: m.Family, Ready: m.Ready(),
			Problem: m.Problem, Loaded: loaded[m.Name], Description: m.Description}
		if !m.CreatedAt.IsZero() {
			at := m.CreatedAt
			st.CreatedAt = &at
		}
		out.Students = append(out.Students, st)
	}
	return out, nil
}

// maxRevision bounds a revision name (branches, tags and commit ids are much shorter).
const maxRevision = 255

func validRevision(rev string) error {
	if len(rev) > maxRevision || strings.ContainsFunc(rev, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return fmt.Errorf("revision %q: want a branch, tag or commit id without spaces", rev)
	}
	return nil
}

func (s *Server) downloadModel(w http.ResponseWriter, r *http.Request) {
	var in api.DownloadRequest
	if !decodeJSON(w, r, &in) {
		return
	}
	in.Repo, in.Revision = strings.TrimSpace(in.Repo), strings.TrimSpace(in.Revision)
	if in.Repo == "" {
		openAIErrors.write(w, http.StatusBadRequest, "invalid_request_error", "invalid_repo",
			"repo is required: a Hugging Face repository id such as Qwen/Qwen3-0.6B")
		return
	}
	if err := hub.ValidateRepo(in.Repo); err != nil {
		openAIErrors.write(w, http.StatusBadRequest, "invalid_request_error", "invalid_repo",
			err.Error()+", such as Qwen/Qwen3-0.6B")
		return
	}
	if err := validRevision(in.Revision); err != nil {
		openAIErrors.write(w, http.StatusBadRequest, "invalid_request_error", "invalid_revision", err.Error())
		return
	}
	name := hub.DirName(in.Repo)
	e := s.engine
	job, err := e.jobs.start(api.Job{Kind: api.JobModelDownload, Repo: in.Repo, Revision: in.Revision, Model: name, Phase: "download"},
		func(j api.Job) string {
			if j.Kind == api.JobModelDownload && j.Model == name {
				return in.Repo + " is already being downloaded (job " + j.ID + ")"
			}
			return ""
		},
		func(j api.Job) bool { return j.Kind == api.JobModelDownload && j.Model == name },
		func(ctx context.Context, update jobUpdate) error {
			m, err := e.hub.Download(ctx, in.Repo, in.Revision, func(p hub.Progress) {
				update(func(j *api.Job) { j.Progress = toJobProgress(p) }, p.FileComplete)
			})
			// A model appears (or an older one changes) in the gateway's list at once.
			s.gateway.ForgetModels(s.parts.local.Name())
			if err != nil {
				return err
			}
			update(func(j *api.Job) {
				j.Model, j.Revision = m.Name, m.Revision
				j.Progress.Done, j.Progress.BytesPerSec = j.Progress.Total, 0
			}, false)
			return nil
		})
	s.writeJobStart(w, job, err)
}

func (s *Server) cancelDownload(w http.ResponseWriter, r *http.Request) {
	s.cancelJobOf(w, r, api.JobModelDownload)
}

func (s *Server) deleteLocalModel(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	lp := s.parts.local
	m, err := lp.Registry().Get(name)
	if errors.Is(err, local.ErrNotFound) {
		openAIErrors.write(w, http.StatusNotFound, "invalid_request_error", "model_not_found", fmt.Sprintf("no local model named %q", name))
		return
	}
	if err != nil {
		s.log.Error("delete local model", "model", name, "err", err)
		openAIErrors.write(w, http.StatusInternalServerError, "server_error", "delete_failed", err.Error())
		return
	}
	if m.Kind == local.KindStudent {
		err = lp.RemoveStudent(m.Name)
	} else {
		err = s.deleteModelFolder(m.Name)
	}
	var busy *busyError
	switch {
	case errors.As(err, &busy):
		openAIErrors.write(w, http.StatusConflict, "invalid_request_error", "model_busy", busy.msg)
		return
	case errors.Is(err, hub.ErrNotFound), errors.Is(err, local.ErrNotFound):
		openAIErrors.write(w, http.StatusNotFound, "invalid_request_error", "model_not_found", err.Error())
		return
	case err != nil:
		s.log.Error("delete local model", "model", name, "err", err)
		openAIErrors.write(w, http.StatusInternalServerError, "server_error", "delete_failed", err.Error())
		return
	}
	s.gateway.ForgetModels(lp.Name())
	s.log.Info("local model deleted", "model", m.Name, "kind", m.Kind)
	s.listLocalModels(w, nil)
}

// busyError: the model is in use in a way that a delete must not break.
type busyError struct{ msg string }

func (e *busyError) Error() string { return e.msg }

// deleteModelFolder deletes a downloaded model, unless it is downloading or a student is built
// on it; a loaded model is unloaded first.
func (s *Server) deleteModelFolder(name string) error {
	running := s.engine.jobs.list(func(j api.Job) bool {
		return j.Kind == api.JobModelDownload && j.State == api.JobRunning && j.Model == name
	})
	if len(running) > 0 {
		return &busyError{msg: fmt.Sprintf("%s is being downloaded (job %s): cancel the download first", name, running[0].ID)}
	}
	all, err := s.parts.local.Registry().List()
	if err != nil {
		return err
	}
	var students []string
	for _, m := range all {
		if m.Kind == local.KindStudent && m.BaseModel == name {
			students = append(students, m.Name)
		}
	}
	if len(students) > 0 {
		slices.Sort(students)
		return &busyError{msg: fmt.Sprintf("%s is the base model of %s: delete the student first", name, strings.Join(students, ", "))}
	}
	s.parts.local.Unload(name)
	if !strings.Contains(name, "--") || hub.ValidateRepo(hub.RepoOf(name)) != nil {
		// A folder put there by hand, not named after a repository: the Hub client does not
		// touch those. The manifest goes first, as the Hub client does it.
		return removeModelDir(filepath.Join(s.engine.hub.Dir(), name))
	}
	err = s.engine.hub.Delete(name)
	if errors.Is(err, hub.ErrBusy) {
		return &busyError{msg: err.Error()}
	}
	return err
}

// removeModelDir deletes a model folder (its name already checked by the registry), manifest first.
func removeModelDir(dir string) error {
	if err := os.Remove(filepath.Join(dir, hub.ManifestName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete model: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("delete model: %w", err)
	}
	return nil
}

// toJobProgress converts a download report.
func toJobProgress(p download.Progress) api.JobProgress {
	return api.JobProgress{File: p.File, FileIndex: p.Index, FileCount: p.Count, FileDone: p.FileDone, FileTotal: p.FileTotal,
		Done: p.Done, Total: p.Total, BytesPerSec: p.BytesPerSec}
}
