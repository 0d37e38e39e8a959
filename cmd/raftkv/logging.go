package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// logFlags are raftkv serve's logging flags, spelled as etcd 3.5 spells
// them (--log-level is with the other serve flags):
//
//	--logger zap             etcd's structured logger, the default: raftkv
//	                         writes JSON lines through log/slog
//	--log-format json|text   raftkv's own: text gives slog's key=value lines
//	                         for a person at a terminal
//	--log-outputs default,stderr,stdout,<file path>
//	                         where the lines go, several at once if listed
//	                         ("default" is stderr, as etcd's)
type logFlags struct {
	logger, format, outputs string
}

func addLogFlags(fl *pflag.FlagSet, f *logFlags) {
	fl.StringVar(&f.logger, "logger", "zap", `"zap" (etcd 3.5's structured logger) logs JSON lines; see --log-format for text`)
	fl.StringVar(&f.format, "log-format", "json", `"json" (as etcd 3.5's zap logger) or "text" (key=value lines)`)
	fl.StringVar(&f.outputs, "log-outputs", "default", `comma-separated: "default" or "stderr", "stdout", or a file path (appended to)`)
}

// newLogger builds the logger the flags ask for, at level, writing to
// stderr for "default" and "stderr". The returned io.Closer closes the
// files it opened.
func (f logFlags) newLogger(stderr io.Writer, level string) (*slog.Logger, io.Closer, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	if f.logger != "zap" {
		return nil, nil, fmt.Errorf(`--logger %q: raftkv has etcd 3.5's one logger, "zap" (structured JSON; --log-format text for text)`, f.logger)
	}
	var writers []io.Writer
	var files multiCloser
	seen := map[string]bool{}
	for _, out := range strings.Split(f.outputs, ",") {
		out = strings.TrimSpace(out)
		if out == "" || seen[out] {
			continue
		}
		seen[out] = true
		switch out {
		case "default", "stderr":
			if !seen["default"] || !seen["stderr"] { // both name stderr: write once
				writers = append(writers, stderr)
			}
		case "stdout":
			writers = append(writers, os.Stdout)
		default:
			file, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
			if err != nil {
				files.Close()
				return nil, nil, fmt.Errorf("--log-outputs: %w", err)
			}
			writers = append(writers, file)
			files = append(files, file)
		}
	}
	if len(writers) == 0 {
		return nil, nil, fmt.Errorf("--log-outputs %q names no output", f.outputs)
	}
	w := writers[0]
	if len(writers) > 1 {
		w = io.MultiWriter(writers...)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch f.format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), files, nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), files, nil
	}
	files.Close()
	return nil, nil, fmt.Errorf(`--log-format %q: want "json" or "text"`, f.format)
}

// multiCloser closes several files.
type multiCloser []*os.File

func (m multiCloser) Close() error {
	var errs []error
	for _, f := range m {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}
