package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"opentracy/backend/api"
	"opentracy/backend/atomicfile"
	"opentracy/backend/events"
)

// JobsFile keeps the background jobs (model downloads, GPU runtime installs) in the data dir, so
// that a job a restart cut short shows as interrupted instead of vanishing.
const JobsFile = "jobs.json"

const (
	// maxKeptJobs bounds the finished jobs kept; the oldest go first.
	maxKeptJobs = 50
	// jobSaveEvery is the least time between two writes of the file for progress alone.
	jobSaveEvery = 5 * time.Second
	// cancelWait is how long a cancel request waits for its job to stop before answering.
	cancelWait = 10 * time.Second
)

// Errors of the job store.
var (
	errJobNotFound   = errors.New("no such job")
	errJobNotRunning = errors.New("the job is not running")
	errJobRunning    = errors.New("the job is running: cancel it first")
	errJobsClosed    = errors.New("the server is shutting down")
	// Causes of a job's cancellation.
	errCanceledByUser = errors.New("canceled")
	errShutdown       = errors.New("OpenTracy stopped while this job ran; start it again to resume")
)

// jobConflictError: a running job stands in the way of a new one.
type jobConflictError struct {
	job api.Job
	msg string
}

func (e *jobConflictError) Error() string { return e.msg }

// jobStore runs background jobs and keeps their records in a JSON file, written atomically.
type jobStore struct {
	path string
	hub  *events.Hub
	log  *slog.Logger
	now  func() time.Time

	ctx  context.Context // canceled by close
	stop context.CancelFunc
	wg   sync.WaitGroup

	saveMu sync.Mutex // orders file writes; taken before mu

	mu     sync.Mutex
	jobs   []*jobRun // oldest first
	closed bool
	saved  time.Time
}

// jobRun is a job and, while it runs, how to stop it.
type jobRun struct {
	job    api.Job
	cancel context.CancelCauseFunc
	done   chan struct{} // closed when the job has ended
}

type jobsFile struct {
	Jobs []api.Job `json:"jobs"`
}

// openJobStore reads the jobs file; jobs it finds running were cut short by a stop and are
// marked interrupted. An unreadable file is set aside (as .bad) rather than stopping the app.
func openJobStore(path string, hub *events.Hub, log *slog.Logger) (*jobStore, error) {
	ctx, stop := context.WithCancel(context.Background())
	st := &jobStore{path: path, hub: hub, log: log, now: time.Now, ctx: ctx, stop: stop}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return st, nil
	case err != nil:
		stop()
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var f jobsFile
	if err := json.Unmarshal(data, &f); err != nil {
		log.Warn("the jobs file is unreadable: set aside, starting without it", "path", path, "err", err)
		if err := os.Rename(path, path+".bad"); err != nil {
			stop()
			return nil, fmt.Errorf("set aside %s: %w", path, err)
		}
		return st, nil
	}
	interrupted := 0
	for _, j := range f.Jobs {
		if j.ID == "" {
			continue
		}
		if j.State == api.JobRunning {
			now := st.now().UTC()
			j.State, j.Error, j.UpdatedAt, j.FinishedAt = api.JobInterrupted, errShutdown.Error(), now, &now
			j.Progress.BytesPerSec = 0
			interrupted++
		}
		done := make(chan struct{})
		close(done)
		st.jobs = append(st.jobs, &jobRun{job: j, done: done})
	}
	if interrupted > 0 {
		log.Warn("jobs were interrupted by the last stop", "jobs", interrupted)
		if err := st.save(); err != nil {
			stop()
			return nil, err
		}
	}
	return st, nil
}

// newJobID returns a random id.
func newJobID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // never fails (crypto/rand panics rather than return an error)
	return "job_" + hex.EncodeToString(b)
}

// jobUpdate changes a running job's record and sends it as an event (the downloader already
// spaces its reports, and sends the last one of a stalled transfer); force also writes the file
// at once, which is otherwise written every jobSaveEvery.
type jobUpdate func(change func(*api.Job), force bool)

// jobFunc is a job's work: it reports through update and returns when done, or with why not.
type jobFunc func(ctx context.Context, update jobUpdate) error

// start records a new running job and runs work in the background. conflict, when it returns
// a message for a running job, refuses the new one with a *jobConflictError. Finished jobs
// that superseded says the new one replaces are forgotten.
func (st *jobStore) start(job api.Job, conflict func(api.Job) string, superseded func(api.Job) bool, work jobFunc) (api.Job, error) {
	st.saveMu.Lock()
	defer st.saveMu.Unlock()
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return api.Job{}, errJobsClosed
	}
	for _, r := range st.jobs {
		if r.job.State != api.JobRunning {
			continue
		}
		if msg := conflict(r.job); msg != "" {
			st.mu.Unlock()
			return api.Job{}, &jobConflictError{job: r.job, msg: msg}
		}
	}
	now := st.now().UTC()
	job.ID, job.State, job.CreatedAt, job.UpdatedAt = newJobID(), api.JobRunning, now, now
	ctx, cancel := context.WithCancelCause(st.ctx)
	run := &jobRun{job: job, cancel: cancel, done: make(chan struct{})}
	st.jobs = slices.DeleteFunc(st.jobs, func(r *jobRun) bool { return r.job.State != api.JobRunning && superseded(r.job) })
	st.jobs = append(st.jobs, run)
	st.prune()
	st.publish(run.job)
	st.wg.Add(1)
	st.mu.Unlock()
	if err := st.saveLocked(); err != nil {
		st.log.Error("cannot write the jobs file", "err", err)
	}

	go func() {
		defer st.wg.Done()
		defer close(run.done)
		err := work(ctx, func(change func(*api.Job), force bool) { st.update(run, change, force) })
		cause := context.Cause(ctx)
		cancel(nil)
		st.finish(run, err, cause)
	}()
	return job, nil
}

// prune forgets the oldest finished jobs beyond maxKeptJobs. The caller holds mu.
func (st *jobStore) prune() {
	finished := 0
	for _, r := range st.jobs {
		if r.job.State != api.JobRunning {
			finished++
		}
	}
	st.jobs = slices.DeleteFunc(st.jobs, func(r *jobRun) bool {
		if finished > maxKeptJobs && r.job.State != api.JobRunning {
			finished--
			return true
		}
		return false
	})
}

func (st *jobStore) update(run *jobRun, change func(*api.Job), force bool) {
	st.mu.Lock()
	change(&run.job)
	now := st.now()
	run.job.UpdatedAt = now.UTC()
	st.publish(run.job)
	due := force || now.Sub(st.saved) >= jobSaveEvery
	st.mu.Unlock()
	if due {
		if err := st.save(); err != nil {
			st.log.Error("cannot write the jobs file", "err", err)
		}
	}
}

// finish records how a job ended: err nil is done; a cancel by the user is canceled, by a
// shutdown interrupted; anything else failed.
func (st *jobStore) finish(run *jobRun, err error, cause error) {
	st.mu.Lock()
	now := st.now().UTC()
	j := &run.job
	j.UpdatedAt, j.FinishedAt = now, &now
	j.Progress.BytesPerSec = 0
	switch {
	case err == nil:
		j.State, j.Error = api.JobDone, ""
	case errors.Is(cause, errCanceledByUser):
		j.State, j.Error = api.JobCanceled, "canceled: what was downloaded is kept, start it again to resume"
	case errors.Is(cause, errShutdown):
		j.State, j.Error = api.JobInterrupted, errShutdown.Error()
	default:
		j.State, j.Error = api.JobFailed, err.Error()
	}
	st.publish(run.job)
	final := run.job
	st.mu.Unlock()
	if err := st.save(); err != nil {
		st.log.Error("cannot write the jobs file", "err", err)
	}
	st.log.Info("job ended", "job", final.ID, "kind", final.Kind, "state", final.State, "err", final.Error)
}

// publish sends the job as an event. The caller holds mu, so a job's events keep their order.
func (st *jobStore) publish(j api.Job) {
	_, _ = st.hub.Publish(string(api.EventJob), j) // fails only once the hub is closed: shutting down
}

// save writes every job to the file.
func (st *jobStore) save() error {
	st.saveMu.Lock()
	defer st.saveMu.Unlock()
	return st.saveLocked()
}

// saveLocked writes the file; the caller holds saveMu (not mu).
func (st *jobStore) saveLocked() error {
	st.mu.Lock()
	f := jobsFile{Jobs: make([]api.Job, 0, len(st.jobs))}
	for _, r := range st.jobs {
		f.Jobs = append(f.Jobs, r.job)
	}
	st.saved = st.now()
	st.mu.Unlock()
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode jobs: %w", err)
	}
	if err := atomicfile.Write(st.path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", st.path, err)
	}
	return nil
}

// list returns the jobs that keep, oldest first.
func (st *jobStore) list(keep func(api.Job) bool) []api.Job {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := []api.Job{}
	for _, r := range st.jobs {
		if keep == nil || keep(r.job) {
			out = append(out, r.job)
		}
	}
	return out
}

// get returns one job.
func (st *jobStore) get(id string) (api.Job, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, r := range st.jobs {
		if r.job.ID == id {
			return r.job, nil
		}
	}
	return api.Job{}, fmt.Errorf("job %q: %w", id, errJobNotFound)
}

// cancel stops a running job and waits, up to cancelWait or ctx, for it to end; it returns the
// job as it is then.
func (st *jobStore) cancel(ctx context.Context, id string, kind api.JobKind) (api.Job, error) {
	st.mu.Lock()
	var run *jobRun
	for _, r := range st.jobs {
		if r.job.ID == id && (kind == "" || r.job.Kind == kind) {
			run = r
		}
	}
	if run == nil {
		st.mu.Unlock()
		return api.Job{}, fmt.Errorf("job %q: %w", id, errJobNotFound)
	}
	if run.job.State != api.JobRunning {
		j := run.job
		st.mu.Unlock()
		return j, fmt.Errorf("job %s is %s: %w", id, j.State, errJobNotRunning)
	}
	run.cancel(errCanceledByUser)
	st.mu.Unlock()

	t := time.NewTimer(cancelWait)
	defer t.Stop()
	select {
	case <-run.done:
	case <-t.C:
	case <-ctx.Done():
	}
	return st.get(id)
}

// remove forgets a finished job.
func (st *jobStore) remove(id string) error {
	st.saveMu.Lock()
	defer st.saveMu.Unlock()
	st.mu.Lock()
	i := slices.IndexFunc(st.jobs, func(r *jobRun) bool { return r.job.ID == id })
	if i < 0 {
		st.mu.Unlock()
		return fmt.Errorf("job %q: %w", id, errJobNotFound)
	}
	if st.jobs[i].job.State == api.JobRunning {
		st.mu.Unlock()
		return fmt.Errorf("job %s: %w", id, errJobRunning)
	}
	st.jobs = slices.Delete(st.jobs, i, i+1)
	st.mu.Unlock()
	return st.saveLocked()
}

// close stops the running jobs (they become interrupted) and waits for them until ctx ends.
func (st *jobStore) close(ctx context.Context) error {
	st.mu.Lock()
	st.closed = true
	for _, r := range st.jobs {
		if r.job.State == api.JobRunning {
			r.cancel(errShutdown)
		}
	}
	st.mu.Unlock()
	st.stop()
	done := make(chan struct{})
	go func() {
		st.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		// The records still say running: the next start marks them interrupted.
		return fmt.Errorf("jobs did not stop in time: %w", ctx.Err())
	}
}
