//go:build unix

package engine

import "syscall"

// fdLimit is the process's file descriptor limit (the soft one, which the
// Go runtime raises to the hard one at start), 0 if unknown.
func fdLimit() uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0
	}
	return uint64(r.Cur) // int64 on some systems
}
