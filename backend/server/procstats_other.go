//go:build !linux

package server

// residentBytes is not reported on this platform.
func residentBytes() uint64 { return 0 }
