package recipe

import (
	"context"
	"errors"
	"path"
	"strings"
	"time"

	"github.com/raftkv/raftkv/client"
)

// Prefix is the hidden directory under which the recipes keep their keys
// when given a bare name ("jobs" is /_recipes/queues/jobs). A name that
// starts with "/" is used as the directory itself.
const Prefix = "/_recipes"

// dirOf is the directory of a recipe instance: kind is "locks",
// "elections", "queues" or "registry".
func dirOf(kind, name string) (string, error) {
	if strings.TrimSpace(name) == "" || strings.Trim(name, "/") == "" {
		return "", errors.New("recipe: a name is required")
	}
	if strings.HasPrefix(name, "/") {
		return path.Clean(name), nil
	}
	return path.Join(Prefix, kind, name), nil
}

// definite reports whether err is the server's own refusal, so that the
// request certainly did not take effect (not a lost answer, not a 5xx).
func definite(err error) bool {
	var e *client.Error
	return errors.As(err, &e) && e.Code != 0 && e.Code != client.ErrorCodeRaftInternal && e.StatusCode < 500
}

// retryBackoff is the pause before retry number attempt (0, 1, ...) of a
// request that failed for want of a leader or a connection.
func retryBackoff(attempt int) time.Duration {
	d := 20 * time.Millisecond << min(attempt, 4)
	return min(d, 300*time.Millisecond)
}

// sleep waits d, or less if ctx ends (then its error).
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// files lists the files of a directory listing in order (depth first,
// sorted), skipping directories.
func files(n *client.Node, out []*client.Node) []*client.Node {
	if n == nil {
		return out
	}
	for _, child := range n.Nodes {
		if child.Dir {
			out = files(child, out)
			continue
		}
		out = append(out, child)
	}
	return out
}

// listDir reads a directory, sorted and recursive, as a linearizable read.
// A directory that does not exist is an empty listing at the error's
// index.
func listDir(ctx context.Context, c *client.Client, dir string) ([]*client.Node, uint64, error) {
	resp, err := c.Get(ctx, dir, &client.GetOptions{Recursive: true, Sort: true, Quorum: true})
	if client.IsKeyNotFound(err) {
		var e *client.Error
		errors.As(err, &e)
		return nil, e.Index, nil
	}
	if err != nil {
		return nil, 0, err
	}
	return files(resp.Node, nil), resp.Index, nil
}

// isRemoval reports whether an event's action removes its key.
func isRemoval(action string) bool {
	return action == "delete" || action == "compareAndDelete" || action == "expire"
}

// linked returns a context that ends when parent or other ends.
func linked(parent, other context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	stop := context.AfterFunc(other, cancel)
	return ctx, func() { stop(); cancel() }
}
