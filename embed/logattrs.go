package embed

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
)

// identityHandler adds the member's identity to every record it logs —
// its name, data dir and URLs from the start, its member ID and cluster ID
// as soon as they are known — so that each line of a member's log, from
// the first, says which member of which cluster wrote it (as etcd's
// "local-member-id" and "cluster-id" fields do).
type identityHandler struct {
	inner    slog.Handler
	identity *logIdentity
}

// logIdentity holds the attributes identityHandler adds.
type logIdentity struct {
	name, dataDir        string
	clientURLs, peerURLs atomic.Pointer[[]string]
	memberID, clusterID  atomic.Uint64
}

// withIdentity returns a logger that adds id's attributes to every line.
func withIdentity(l *slog.Logger, id *logIdentity) *slog.Logger {
	return slog.New(identityHandler{inner: l.Handler(), identity: id})
}

func (h identityHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

func (h identityHandler) Handle(ctx context.Context, r slog.Record) error {
	id := h.identity
	// A record that says one of these itself keeps its own (a line about
	// a new cluster ID, say): JSON keys stay unique.
	has := map[string]bool{}
	r.Attrs(func(a slog.Attr) bool {
		has[a.Key] = true
		return true
	})
	add := func(a slog.Attr) {
		if !has[a.Key] {
			r.AddAttrs(a)
		}
	}
	add(slog.String("name", id.name))
	if v := id.memberID.Load(); v != 0 {
		add(slog.String("local-member-id", fmt.Sprintf("%x", v)))
	}
	if v := id.clusterID.Load(); v != 0 {
		add(slog.String("cluster-id", fmt.Sprintf("%x", v)))
	}
	add(slog.String("data-dir", id.dataDir))
	if urls := id.clientURLs.Load(); urls != nil {
		add(slog.Any("advertise-client-urls", *urls))
	}
	if urls := id.peerURLs.Load(); urls != nil {
		add(slog.Any("advertise-peer-urls", *urls))
	}
	return h.inner.Handle(ctx, r)
}

func (h identityHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return identityHandler{inner: h.inner.WithAttrs(attrs), identity: h.identity}
}

func (h identityHandler) WithGroup(name string) slog.Handler {
	return identityHandler{inner: h.inner.WithGroup(name), identity: h.identity}
}
