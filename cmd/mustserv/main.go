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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// Once the drain began, a second signal kills the process at once.
	context.AfterFunc(ctx, stop)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mustserv:", err)
		os.Exit(exitCode(err))
	}
}
