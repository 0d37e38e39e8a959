// Command raftkv is the one binary of raftkv: the server, the client
// commands, and the tools (sim, bench, check, view). Each subcommand lives in
// its own file of this package.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// rootCmd is the raftkv command; subcommands add themselves in init.
var rootCmd = &cobra.Command{
	Use:           "raftkv",
	Short:         "raftkv: a Raft-replicated key-value store with the etcd v2 API",
	SilenceUsage:  true,
	SilenceErrors: true,
}

func main() {
	if err := rootCmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "raftkv:", err)
		os.Exit(exitCode(err))
	}
}

// exitError carries a process exit code with its message.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func exitCode(err error) int {
	if e, ok := err.(*exitError); ok {
		return e.code
	}
	return 2
}
