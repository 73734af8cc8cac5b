package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// realMain runs the bench and returns the exit code: 0 when every check
// passed, 1 when one failed or the run could not start, 2 for bad flags.
func realMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	cfg.log = stderr

	// The first SIGINT or SIGTERM ends the run early (it still drains,
	// checks and prints); a second one kills the process as usual.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()

	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "lily-bench: -cpuprofile:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "lily-bench: -cpuprofile:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}

	pass := false
	if cfg.connectOnly > 0 {
		res, err := runConnectOnly(ctx, cfg)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		if err := printConnect(stdout, res, cfg.jsonOnly); err != nil {
			fmt.Fprintln(stderr, "lily-bench:", err)
			return 1
		}
		pass = res.Pass
	} else {
		res, err := runLoad(ctx, cfg)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		if err := printLoad(stdout, res, cfg.urls, cfg.jsonOnly); err != nil {
			fmt.Fprintln(stderr, "lily-bench:", err)
			return 1
		}
		pass = res.Pass
	}
	if !pass {
		return 1
	}
	return 0
}
