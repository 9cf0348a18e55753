// Command mustserv is a lightweight media streaming server: it serves
// folders of audio and video to any player over plain HTTP. See run.go for
// the wiring and README.md for its use.
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
		// The first signal starts the drain; from then on a second one
		// kills the process at once (the default action is restored
		// before the drain begins, so no signal can fall in between).
		signal.Reset(os.Interrupt, syscall.SIGTERM)
		cancel()
	}()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mustserv:", err)
		os.Exit(exitCode(err))
	}
}
