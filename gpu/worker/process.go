package worker

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"
)

// Command is the subcommand of the app's binary that runs a worker.
const Command = "engine-worker"

// tailLines is how many of the worker's last stderr lines are kept for a death report.
const tailLines = 40

// spawn starts a worker process and returns its pipes. The process dies with its input: when
// the app exits, however it exits, the worker reads EOF and ends.
func spawn(ctx context.Context, command, env []string, log *slog.Logger) (*link, error) {
	if len(command) == 0 {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find this executable: %w", err)
		}
		command = []string{self, Command}
	}
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Env = env
	detach(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", command[0], err)
	}
	pid := cmd.Process.Pid
	tail := &tail{max: tailLines}
	stderrDone := make(chan struct{})
	go func() {
		defer close(stderrDone)
		relay(stderr, tail, log.With("worker_pid", pid))
	}()
	var waitOnce sync.Once
	var dead *DeadError
	wait := func() *DeadError {
		waitOnce.Do(func() {
			// Wait closes the pipes: read stderr to its end first (briefly: a grandchild could
			// hold it open), and do not wait forever for a worker that closed its output alive.
			select {
			case <-stderrDone:
			case <-time.After(2 * time.Second):
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			var err error
			select {
			case err = <-exited:
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				err = <-exited
			}
			dead = describeExit(cmd.ProcessState, err)
			dead.Output = tail.report()
		})
		return dead
	}
	kill := func() { _ = cmd.Process.Kill() }
	return &link{r: stdout, w: stdin, wait: wait, kill: kill, pid: pid}, nil
}

// describeExit says how a process ended, with a guess at what it means.
func describeExit(st *os.ProcessState, err error) *DeadError {
	if st == nil {
		return &DeadError{Cause: fmt.Sprintf("lost: %v", err)}
	}
	d := &DeadError{Cause: st.String()} // "signal: killed", "exit status 2"
	switch {
	case strings.Contains(d.Cause, "signal: killed"):
		// The kernel's OOM killer sends SIGKILL; so would a person, rarely.
		d.Hint = "out of memory?"
	case strings.Contains(d.Cause, "signal: aborted"):
		d.Hint = "a CUDA or XLA abort?"
	case strings.Contains(d.Cause, "signal: segmentation fault"), strings.Contains(d.Cause, "signal: bus error"):
		d.Hint = "a crash in native code?"
	case st.ExitCode() == 2:
		d.Hint = "a Go panic or fatal error?"
	case st.Success():
		d.Cause = "exited unexpectedly"
	}
	return d
}

// relay passes the worker's stderr to log: its slog JSON records at their own level, anything
// else (a panic, a native library's output) as warnings. Every line also goes to t.
func relay(r io.Reader, t *tail, log *slog.Logger) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		var rec map[string]any
		dec := json.NewDecoder(strings.NewReader(line))
		dec.UseNumber() // integers stay integers in the app's log
		if dec.Decode(&rec) != nil || rec["msg"] == nil {
			t.add(line)
			log.Warn("engine worker output", "line", line)
			continue
		}
		msg, _ := rec["msg"].(string)
		var level slog.Level
		if s, ok := rec["level"].(string); !ok || level.UnmarshalText([]byte(s)) != nil {
			level = slog.LevelInfo
		}
		delete(rec, "msg")
		delete(rec, "level")
		delete(rec, "time")
		keys := make([]string, 0, len(rec))
		for k := range rec {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		args := make([]any, 0, 2*len(keys))
		summary := level.String() + " " + msg
		for _, k := range keys {
			v := rec[k]
			if n, ok := v.(json.Number); ok {
				if i, err := n.Int64(); err == nil {
					v = i
				} else if f, err := n.Float64(); err == nil {
					v = f
				}
			}
			args = append(args, slog.Any(k, v))
			if k == "err" || k == "error" || k == "panic" {
				summary += fmt.Sprintf(" %s=%v", k, rec[k])
			}
		}
		t.add(summary)
		log.Log(context.Background(), level, msg, args...)
	}
}

// tail keeps the last lines of a stream.
type tail struct {
	mu    sync.Mutex
	max   int
	lines []string
}

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, truncate(line, 500))
	if len(t.lines) > t.max {
		t.lines = slices.Delete(t.lines, 0, len(t.lines)-t.max)
	}
}

// report picks what a death report shows: the last few lines, after the line that announced
// a Go panic or fatal error when there is one (its stack follows it).
func (t *tail) report() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	const n = 6
	out := t.lines[max(0, len(t.lines)-n):]
	for i := len(t.lines) - 1; i >= 0; i-- {
		l := t.lines[i]
		if strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") || strings.Contains(l, "Check failed") ||
			strings.HasPrefix(l, "terminate called") {
			if i < len(t.lines)-n {
				out = append([]string{l}, out...)
			}
			break
		}
	}
	return slices.Clone(out)
}

// pipeLink runs a Server for engine in this process, on pipes.
func pipeLink(engine *Engine, log *slog.Logger) *link {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan error, 1)
	go func() {
		err := NewServer(engine, log).Serve(ctx, inR, outW)
		outW.Close()
		exited <- err
	}()
	var once sync.Once
	var dead *DeadError
	wait := func() *DeadError {
		once.Do(func() {
			err := <-exited
			switch {
			case err == nil:
				dead = &DeadError{Cause: "exited unexpectedly"}
			case errors.Is(err, context.Canceled):
				dead = &DeadError{Cause: "stopped"}
			default:
				dead = &DeadError{Cause: err.Error()}
			}
		})
		return dead
	}
	kill := func() {
		cancel()
		inR.CloseWithError(io.ErrClosedPipe)
		outR.CloseWithError(io.ErrClosedPipe)
	}
	return &link{r: outR, w: inW, wait: wait, kill: kill}
}
