//go:build unix

package main

import (
	"fmt"
	"syscall"
	"time"
)

// processCPU returns the CPU time (user and system) the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// checkFileLimit refuses to open conns connections when the process's
// open-file limit (which Go raises to the hard limit at start-up) leaves
// too little room.
func checkFileLimit(conns int) error {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return nil // unknown: let the dials tell
	}
	const spare = 64 // stdio, profiles, /metrics scrapes, the runtime's own
	if limit := uint64(rl.Cur); uint64(conns)+spare > limit {
		return fmt.Errorf("lily-bench: %d connections need %d open files, but this process may open %d (ulimit -n); lower -clients/-stores/-connect-only or run several bench processes", conns, conns+spare, limit)
	}
	return nil
}
