//go:build !unix

package main

import "time"

// processCPU is not measured on this platform.
func processCPU() time.Duration { return 0 }

// checkFileLimit cannot check anything on this platform.
func checkFileLimit(int) error { return nil }
