// Command mustload simulates media players against an HTTP server, for
// benchmarks of bitrate pacing: see internal/loadgen for the player model
// and docs/mustload.md for its use. It only drives loadgen and prints its
// report; it serves nothing.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		// The first signal stops the players and the report is still
		// written; a second one kills the process at once.
		signal.Reset(os.Interrupt, syscall.SIGTERM)
		cancel()
	}()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mustload:", err)
		os.Exit(exitCode(err))
	}
}
