package api

import "time"

// Engine and local models API:
//
//	GET    /api/engine                      Engine: the GPU, the backend plan, the GPU runtime
//	POST   /api/engine/runtime/install      starts a runtime.install Job (202)
//	DELETE /api/engine/runtime              removes the installed GPU runtime (Engine)
//	GET    /api/local-models                LocalModels: downloaded models, students, downloads
//	POST   /api/local-models/download       DownloadRequest; starts a model.download Job (202)
//	DELETE /api/local-models/download/{id}  cancels a download (Job); POST it again to resume
//	DELETE /api/local-models/{name}         deletes a model or a student (LocalModels)
//	GET    /api/jobs, /api/jobs/{id}        background jobs (Job)
//	POST   /api/jobs/{id}/cancel            cancels a running job (Job)
//	DELETE /api/jobs/{id}                   forgets a finished job
//
// Job progress is also sent live as "job" events on /api/events.

// Engine is what the Local models screen shows about where the student engine runs.
type Engine struct {
	GPU  GPU        `json:"gpu"`
	Plan EnginePlan `json:"plan"`
	// ConfigBackend is the configured engine backend: auto (the default), go or xla:cuda.
	ConfigBackend string `json:"configBackend"`
	// Runtime is the installed GPU runtime; absent when none is installed.
	Runtime *GPURuntime `json:"runtime,omitempty"`
	// RuntimeVersion is the GPU runtime this build installs; RuntimeDownloadBytes about what its
	// download weighs (the wheels whose sizes are pinned).
	RuntimeVersion       string `json:"runtimeVersion"`
	RuntimeDownloadBytes int64  `json:"runtimeDownloadBytes"`
	// WheelMirror tells whether engine.wheel_mirror, where the runtime is downloaded from, is set.
	WheelMirror bool `json:"wheelMirror"`
	// InstallBlocked says why Install GPU runtime cannot run now; empty when it can.
	InstallBlocked string `json:"installBlocked,omitempty"`
	// Install is the running install job, or the last one that did not finish.
	Install *Job `json:"install,omitempty"`
}

// GPU is what NVML found.
type GPU struct {
	Present bool `json:"present"`
	// Reason says why no GPU was found.
	Reason string `json:"reason,omitempty"`
	Driver string `json:"driver,omitempty"`
	// CUDA is the newest CUDA version the driver supports ("12.4").
	CUDA    string      `json:"cuda,omitempty"`
	Devices []GPUDevice `json:"devices"`
}

// GPUDevice is one NVIDIA GPU; memory in bytes.
type GPUDevice struct {
	Index       int    `json:"index"`
	Name        string `json:"name"`
	MemoryTotal uint64 `json:"memoryTotal"`
	MemoryFree  uint64 `json:"memoryFree"`
	// ComputeCapability is "9.0" for an H100; empty when unknown.
	ComputeCapability string `json:"computeCapability,omitempty"`
}

// EnginePlanStatus says what the engine runs on and why.
type EnginePlanStatus string

const (
	// PlanGPU: the GPU runtime is ready.
	PlanGPU EnginePlanStatus = "gpu"
	// PlanCPU: the CPU backend is configured.
	PlanCPU EnginePlanStatus = "cpu"
	// PlanNoGPU: no GPU, so the CPU backend.
	PlanNoGPU EnginePlanStatus = "no-gpu"
	// PlanNeedsRuntime: a GPU, but the GPU runtime is not installed.
	PlanNeedsRuntime EnginePlanStatus = "needs-runtime"
	// PlanUnusable: a GPU and a runtime that cannot work together, so the CPU backend.
	PlanUnusable EnginePlanStatus = "unusable"
	// PlanError: the configuration asks for something that cannot be had (engine backend
	// xla:cuda without a GPU, say); the engine cannot start until it is fixed.
	PlanError EnginePlanStatus = "error"
)

// EnginePlan is the backend the engine uses.
type EnginePlan struct {
	// Backend is "go" (the CPU) or "xla:cuda"; empty when Status is error.
	Backend string           `json:"backend"`
	Status  EnginePlanStatus `json:"status"`
	// Message explains the choice to the user.
	Message string `json:"message"`
	// Warnings are problems that do not stop the GPU from being used.
	Warnings []string `json:"warnings"`
}

// GPURuntime is an installed GPU runtime (the XLA CUDA plugin and NVIDIA libraries).
type GPURuntime struct {
	Version     string    `json:"version"`
	Path        string    `json:"path"`
	CUDAMajor   int       `json:"cudaMajor"`
	InstalledAt time.Time `json:"installedAt"`
	// Wheels are the packages it came from ("name==version").
	Wheels []string `json:"wheels"`
}

// LocalModels is the Local models table: what is in DATA_DIR/models and DATA_DIR/students.
type LocalModels struct {
	Models   []LocalModel   `json:"models"`
	Students []LocalStudent `json:"students"`
	// Downloads are the download jobs that are running or did not finish (failed, canceled,
	// interrupted by a restart): POST the download again to resume them.
	Downloads []Job `json:"downloads"`
	// Provider is the gateway provider that serves them: requests call "<provider>/<name>".
	Provider string `json:"provider"`
}

// LocalModel is a downloaded model folder.
type LocalModel struct {
	// Name is the folder name ("Qwen--Qwen3-0.6B"): the gateway serves it as local/<name>, and
	// DELETE /api/local-models/{name} deletes it.
	Name     string `json:"name"`
	Repo     string `json:"repo"`
	Revision string `json:"revision,omitempty"`
	Commit   string `json:"commit,omitempty"`
	// Family is qwen3 or llama; empty when the engine cannot run the model.
	Family string `json:"family,omitempty"`
	// Params is the parameter count (0 when unknown).
	Params    int64 `json:"params"`
	SizeBytes int64 `json:"sizeBytes"`
	// Complete is true once every file is downloaded and verified.
	Complete bool `json:"complete"`
	// Ready is true when the gateway can serve it (complete and of a family the engine runs).
	Ready bool `json:"ready"`
	// Problem says why it is not ready.
	Problem string `json:"problem,omitempty"`
	// Downloading is true while a download job writes into it.
	Downloading bool `json:"downloading"`
	// Loaded is true while the model is in memory.
	Loaded       bool       `json:"loaded"`
	DownloadedAt *time.Time `json:"downloadedAt,omitempty"`
}

// LocalStudent is a published student: a LoRA adapter on a downloaded model.
type LocalStudent struct {
	Name string `json:"name"`
	// Base is the base model's name (a LocalModel's Name).
	Base string `json:"base"`
	// Adapter is the folder holding the PEFT adapter.
	Adapter     string     `json:"adapter"`
	Family      string     `json:"family,omitempty"`
	Ready       bool       `json:"ready"`
	Problem     string     `json:"problem,omitempty"`
	Loaded      bool       `json:"loaded"`
	Description string     `json:"description,omitempty"`
	CreatedAt   *time.Time `json:"createdAt,omitempty"`
}

// DownloadRequest asks for a model from the Hugging Face Hub.
type DownloadRequest struct {
	// Repo is the repository id, "owner/name" (e.g. Qwen/Qwen3-0.6B).
	Repo string `json:"repo"`
	// Revision is a branch, tag or commit; default main.
	Revision string `json:"revision,omitempty"`
}

// JobKind names what a background job does.
type JobKind string

const (
	JobModelDownload  JobKind = "model.download"
	JobRuntimeInstall JobKind = "runtime.install"
)

// JobState is where a job stands. Only running jobs change; the others are final.
type JobState string

const (
	JobRunning JobState = "running"
	JobDone    JobState = "done"
	JobFailed  JobState = "failed"
	// JobCanceled: the user stopped it. What was downloaded is kept: starting it again resumes.
	JobCanceled JobState = "canceled"
	// JobInterrupted: OpenTracy stopped while it ran. Starting it again resumes.
	JobInterrupted JobState = "interrupted"
)

// Job is a background job: a model download or a GPU runtime install. Jobs are kept in
// DATA_DIR/jobs.json, so one that a restart cut short shows as interrupted instead of vanishing.
type Job struct {
	ID    string   `json:"id"`
	Kind  JobKind  `json:"kind"`
	State JobState `json:"state"`
	// Repo and Revision are what a download fetches; Model is the local model it makes.
	Repo     string `json:"repo,omitempty"`
	Revision string `json:"revision,omitempty"`
	Model    string `json:"model,omitempty"`
	// Version is the GPU runtime an install makes.
	Version string `json:"version,omitempty"`
	// Phase is the step under way: download, then extract for an install.
	Phase    string      `json:"phase,omitempty"`
	Progress JobProgress `json:"progress"`
	// Error says why a job failed or stopped.
	Error      string     `json:"error,omitempty"`
	CreatedAt  time.Time  `json:"createdAt"`
	UpdatedAt  time.Time  `json:"updatedAt"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
}

// JobProgress counts bytes; totals are 0 while unknown.
type JobProgress struct {
	// File is the file being fetched; FileIndex counts from 0 up to FileCount-1.
	File      string `json:"file,omitempty"`
	FileIndex int    `json:"fileIndex"`
	FileCount int    `json:"fileCount"`
	FileDone  int64  `json:"fileDone"`
	FileTotal int64  `json:"fileTotal"`
	// Done and Total are bytes over all files, what earlier attempts fetched included.
	Done  int64 `json:"done"`
	Total int64 `json:"total"`
	// BytesPerSec is the recent transfer rate.
	BytesPerSec float64 `json:"bytesPerSec"`
}
