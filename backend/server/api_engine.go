package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"sync"
	"time"

	"opentracy/backend/api"
	"opentracy/backend/config"
	"opentracy/backend/events"
	"opentracy/backend/providers/local"
	"opentracy/gpu/hub"
	"opentracy/gpu/runtime"
)

// gpuCacheFor is how long a GPU detection is reused: NVML is loaded and asked on every detection.
const gpuCacheFor = 5 * time.Second

// engineState is what the engine and local models APIs work with: the background jobs, the Hub
// downloader and the GPU runtime installer.
type engineState struct {
	cfg       config.Config
	jobs      *jobStore
	hub       *hub.Hub
	installer *runtime.Installer
	log       *slog.Logger
	// detect finds the GPUs (NVML); tests replace it.
	detect func() runtime.Info

	gpuMu sync.Mutex
	gpu   runtime.Info
	gpuAt time.Time
}

func newEngineState(cfg config.Config, modelsDir string, eventHub *events.Hub, log *slog.Logger) (*engineState, error) {
	log = log.With(LogKeySubsystem, "engine")
	h, err := hub.New(hub.Options{
		ModelsDir: modelsDir,
		Endpoint:  cfg.HuggingFace.Endpoint,
		Token:     cfg.HuggingFace.Token.Reveal(), // sent to the Hub only, never logged
		Log:       log,
	})
	if err != nil {
		return nil, fmt.Errorf("model downloads: %w", err)
	}
	in, err := runtime.NewInstaller(filepath.Join(cfg.DataDir, local.RuntimeDirName), log)
	if err != nil {
		return nil, fmt.Errorf("GPU runtime installer: %w", err)
	}
	in.Mirror = cfg.Engine.WheelMirror
	jobs, err := openJobStore(filepath.Join(cfg.DataDir, JobsFile), eventHub, log)
	if err != nil {
		return nil, err
	}
	return &engineState{
		cfg: cfg, jobs: jobs, hub: h, installer: in, log: log,
		detect: func() runtime.Info { return runtime.DetectSystem(log) },
	}, nil
}

// gpuInfo detects the GPUs, at most once per gpuCacheFor.
func (e *engineState) gpuInfo() runtime.Info {
	e.gpuMu.Lock()
	defer e.gpuMu.Unlock()
	if e.gpuAt.IsZero() || time.Since(e.gpuAt) >= gpuCacheFor {
		e.gpu, e.gpuAt = e.detect(), time.Now()
	}
	return e.gpu
}

// forgetGPU makes the next gpuInfo detect again.
func (e *engineState) forgetGPU() {
	e.gpuMu.Lock()
	defer e.gpuMu.Unlock()
	e.gpuAt = time.Time{}
}

func (s *Server) engineAPIRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/engine", s.getEngine)
	mux.HandleFunc("POST /api/engine/runtime/install", s.installRuntime)
	mux.HandleFunc("DELETE /api/engine/runtime", s.removeRuntime)
	mux.HandleFunc("GET /api/jobs", s.listJobs)
	mux.HandleFunc("GET /api/jobs/{id}", s.getJob)
	mux.HandleFunc("POST /api/jobs/{id}/cancel", s.cancelJob)
	mux.HandleFunc("DELETE /api/jobs/{id}", s.deleteJob)
}

func (s *Server) getEngine(w http.ResponseWriter, _ *http.Request) {
	out, err := s.engineStatus()
	if err != nil {
		s.log.Error("engine status", "err", err)
		openAIErrors.write(w, http.StatusInternalServerError, "server_error", "engine_status_failed", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// engineStatus describes the GPU, the backend the engine would use and the GPU runtime.
func (s *Server) engineStatus() (api.Engine, error) {
	e := s.engine
	info := e.gpuInfo()
	installed, err := e.installer.Installed()
	if err != nil {
		return api.Engine{}, err
	}
	m := e.installer.Manifest
	out := api.Engine{
		GPU:            toAPIGPU(info),
		ConfigBackend:  e.cfg.Engine.Backend,
		RuntimeVersion: m.Version,
		WheelMirror:    e.installer.Mirror != "",
	}
	if out.ConfigBackend == "" {
		out.ConfigBackend = runtime.BackendAuto
	}
	for _, w := range m.Wheels {
		out.RuntimeDownloadBytes += w.Size
	}
	plan, err := runtime.Resolve(e.cfg.Engine.Config, info, installed)
	if err != nil {
		out.Plan = api.EnginePlan{Status: api.PlanError, Message: err.Error(), Warnings: []string{}}
	} else {
		out.Plan = api.EnginePlan{Backend: plan.Backend, Status: api.EnginePlanStatus(plan.Status), Message: plan.Message, Warnings: plan.Warnings}
		if out.Plan.Warnings == nil {
			out.Plan.Warnings = []string{}
		}
	}
	if installed != nil {
		out.Runtime = &api.GPURuntime{Version: installed.Version, Path: installed.Dir, CUDAMajor: installed.CUDAMajor,
			InstalledAt: installed.InstalledAt, Wheels: installed.Wheels}
		if out.Runtime.Wheels == nil {
			out.Runtime.Wheels = []string{}
		}
	}
	installs := e.jobs.list(func(j api.Job) bool { return j.Kind == api.JobRuntimeInstall && j.State != api.JobDone })
	if n := len(installs); n > 0 {
		out.Install = &installs[n-1]
	}
	if msg, _ := s.installBlocked(info, installed); msg != "" {
		out.InstallBlocked = msg
	}
	return out, nil
}

func toAPIGPU(info runtime.Info) api.GPU {
	g := api.GPU{Present: info.Present, Reason: info.Reason, Driver: info.Driver, CUDA: info.CUDAVersion(), Devices: []api.GPUDevice{}}
	for _, d := range info.Devices {
		dev := api.GPUDevice{Index: d.Index, Name: d.Name, MemoryTotal: d.MemoryTotal, MemoryFree: d.MemoryFree}
		if d.ComputeMajor > 0 {
			dev.ComputeCapability = strconv.Itoa(d.ComputeMajor) + "." + strconv.Itoa(d.ComputeMinor)
		}
		g.Devices = append(g.Devices, dev)
	}
	return g
}

// installBlocked says why the GPU runtime cannot be installed now, with the API error code; ""
// when it can.
func (s *Server) installBlocked(info runtime.Info, installed *runtime.Installation) (string, string) {
	in := s.engine.installer
	m := in.Manifest
	switch {
	case installed != nil:
		return fmt.Sprintf("GPU runtime %s is installed; remove it first to install it again.", installed.Version), "runtime_installed"
	case !in.SkipPlatformCheck && (goruntime.GOOS != m.OS || goruntime.GOARCH != m.Arch):
		return fmt.Sprintf("The GPU runtime exists for %s/%s only; this machine is %s/%s.", m.OS, m.Arch, goruntime.GOOS, goruntime.GOARCH), "unsupported_platform"
	case !info.Present:
		return "No NVIDIA GPU was found (" + info.Reason + "): the engine runs on the CPU, which needs no GPU runtime.", "no_gpu"
	case in.Mirror == "":
		return "No wheel mirror is configured: set engine.wheel_mirror in the config file to the base URL the " +
			"GPU runtime's wheels are downloaded from, then restart OpenTracy.", "no_wheel_mirror"
	}
	return "", ""
}

func (s *Server) installRuntime(w http.ResponseWriter, _ *http.Request) {
	e := s.engine
	e.forgetGPU()
	info := e.gpuInfo()
	installed, err := e.installer.Installed()
	if err != nil {
		openAIErrors.write(w, http.StatusInternalServerError, "server_error", "runtime_unreadable", err.Error())
		return
	}
	if msg, code := s.installBlocked(info, installed); msg != "" {
		openAIErrors.write(w, http.StatusConflict, "invalid_request_error", code, msg)
		return
	}
	version := e.installer.Manifest.Version
	job, err := e.jobs.start(api.Job{Kind: api.JobRuntimeInstall, Version: version, Phase: runtime.PhaseDownload},
		func(j api.Job) string {
			if j.Kind == api.JobRuntimeInstall {
				return "the GPU runtime is already being installed (job " + j.ID + ")"
			}
			return ""
		},
		func(j api.Job) bool { return j.Kind == api.JobRuntimeInstall },
		func(ctx context.Context, update jobUpdate) error {
			_, err := e.installer.Install(ctx, func(p runtime.InstallProgress) {
				update(func(j *api.Job) {
					j.Phase = p.Phase
					if p.Phase == runtime.PhaseDownload {
						j.Progress = toJobProgress(p.Download)
					} else {
						j.Progress.BytesPerSec = 0
					}
				}, p.Phase != runtime.PhaseDownload || p.Download.FileComplete)
			})
			e.forgetGPU()
			if err == nil {
				s.parts.local.ResetEngine() // local models move to the GPU now, not at the next start
			}
			return err
		})
	s.writeJobStart(w, job, err)
}

func (s *Server) removeRuntime(w http.ResponseWriter, _ *http.Request) {
	e := s.engine
	if running := e.jobs.list(func(j api.Job) bool { return j.Kind == api.JobRuntimeInstall && j.State == api.JobRunning }); len(running) > 0 {
		openAIErrors.write(w, http.StatusConflict, "invalid_request_error", "job_running",
			"the GPU runtime is being installed (job "+running[0].ID+"): cancel the install first")
		return
	}
	installed, err := e.installer.Installed()
	if err != nil {
		openAIErrors.write(w, http.StatusInternalServerError, "server_error", "runtime_unreadable", err.Error())
		return
	}
	if installed == nil {
		openAIErrors.write(w, http.StatusNotFound, "invalid_request_error", "runtime_not_installed", "no GPU runtime is installed")
		return
	}
	if err := runtime.Remove(e.installer.Root, installed.Version); err != nil {
		s.log.Error("remove GPU runtime", "err", err)
		openAIErrors.write(w, http.StatusInternalServerError, "server_error", "remove_failed", err.Error())
		return
	}
	s.log.Info("GPU runtime removed", "version", installed.Version)
	s.parts.local.ResetEngine()
	s.getEngine(w, nil)
}

func (s *Server) listJobs(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.engine.jobs.list(nil))
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) {
	job, err := s.engine.jobs.get(r.PathValue("id"))
	if err != nil {
		writeJobError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, job)
}

func (s *Server) cancelJob(w http.ResponseWriter, r *http.Request) {
	s.cancelJobOf(w, r, "")
}

// cancelJobOf cancels the job in the path if it is of kind ("" for any).
func (s *Server) cancelJobOf(w http.ResponseWriter, r *http.Request, kind api.JobKind) {
	job, err := s.engine.jobs.cancel(r.Context(), r.PathValue("id"), kind)
	if err != nil {
		writeJobError(w, err)
		return
	}
	s.log.Info("job canceled", "job", job.ID, "kind", job.Kind)
	writeJSON(w, http.StatusOK, job)
}

func (s *Server) deleteJob(w http.ResponseWriter, r *http.Request) {
	if err := s.engine.jobs.remove(r.PathValue("id")); err != nil {
		writeJobError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// writeJobStart answers the start of a job: 202 with it, or why it could not start.
func (s *Server) writeJobStart(w http.ResponseWriter, job api.Job, err error) {
	var conflict *jobConflictError
	switch {
	case errors.As(err, &conflict):
		openAIErrors.write(w, http.StatusConflict, "invalid_request_error", "job_running", conflict.msg)
	case errors.Is(err, errJobsClosed):
		openAIErrors.write(w, http.StatusServiceUnavailable, "server_error", "shutting_down", err.Error())
	case err != nil:
		openAIErrors.write(w, http.StatusInternalServerError, "server_error", "job_failed", err.Error())
	default:
		s.log.Info("job started", "job", job.ID, "kind", job.Kind, "repo", job.Repo)
		w.Header().Set("Location", "/api/jobs/"+job.ID)
		writeJSON(w, http.StatusAccepted, job)
	}
}

func writeJobError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errJobNotFound):
		openAIErrors.write(w, http.StatusNotFound, "invalid_request_error", "job_not_found", err.Error())
	case errors.Is(err, errJobNotRunning):
		openAIErrors.write(w, http.StatusConflict, "invalid_request_error", "job_not_running", err.Error())
	case errors.Is(err, errJobRunning):
		openAIErrors.write(w, http.StatusConflict, "invalid_request_error", "job_running", err.Error())
	default:
		openAIErrors.write(w, http.StatusInternalServerError, "server_error", "job_error", err.Error())
	}
}
