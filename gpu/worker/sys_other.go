//go:build !unix

package worker

import (
	"os"
	"os/exec"
)

func detach(*exec.Cmd) {}

// protocolOutput is stdout itself where descriptors cannot be redirected.
func protocolOutput() (*os.File, error) { return os.Stdout, nil }
