//go:build unix

package worker

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// detach puts the worker in a process group of its own, so that a Ctrl-C in the app's terminal
// reaches the app, which then stops the worker in order, and not the worker directly.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// protocolOutput returns a file on the process's original stdout for the protocol, and points
// descriptor 1 at stderr: native libraries (CUDA, XLA) that print on stdout then land in the
// logs instead of corrupting the message stream.
func protocolOutput() (*os.File, error) {
	fd, err := syscall.Dup(1)
	if err != nil {
		return nil, fmt.Errorf("duplicate stdout: %w", err)
	}
	syscall.CloseOnExec(fd)
	if err := dup2(2, 1); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("redirect stdout to stderr: %w", err)
	}
	return os.NewFile(uintptr(fd), "protocol"), nil
}
