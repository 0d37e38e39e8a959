package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/raftkv/raftkv/simulator"
)

// viewAfterRun serves a run just simulated to a browser (raftkv sim
// --view) until Ctrl-C. historyPath is porcupine's page of its history, if
// one was written; a Script makes the page a lab that can go on from it.
func viewAfterRun(stdout io.Writer, addr string, trace []byte, historyPath string, script *simulator.Script) error {
	src := viewSource{Trace: trace, Script: script}
	if historyPath != "" {
		if page, err := os.ReadFile(historyPath); err == nil {
			src.History = page
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := serveView(ctx, stdout, addr, src); err != nil {
		return fmt.Errorf("view: %w", err)
	}
	return nil
}
