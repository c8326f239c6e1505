//go:build unix

package h1

import (
	"errors"
	"net"
	"syscall"
)

// alive reports whether an idle connection is still open: the server has neither closed it
// (a keep-alive timeout) nor sent anything unasked. One non-blocking peek, no waiting.
func alive(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	open := false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		// Nothing to read is the only healthy answer: 0 bytes is the server's close, more
		// is an answer nobody asked for.
		_, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		open = errors.Is(rerr, syscall.EAGAIN)
		return true // never wait for readiness
	})
	return err == nil && open
}
