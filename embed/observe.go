package embed

import (
	"time"

	"github.com/raftkv/raftkv/rpc"
)

// The member's metrics and statistics are fed from the shell: the disk
// timings from timedFS (fs.go), the raft messages from MessageStats, and
// the rest from the runtime's hooks (member.go).

func (m *Member) walFsync(d time.Duration) {
	if m.metrics != nil {
		m.metrics.ObserveWALFsync(d)
	}
}

func (m *Member) walWrite(n int) {
	if m.metrics != nil {
		m.metrics.AddWALBytes(n)
	}
}

func (m *Member) snapshotFsync(d time.Duration) {
	if m.metrics != nil {
		m.metrics.ObserveSnapshotFsync(d)
	}
}

func (m *Member) snapshotSave(d time.Duration) {
	if m.metrics != nil {
		m.metrics.ObserveSnapshotSave(d)
	}
}

// registerEtcdMetrics registers the etcd-named series that read the
// member's state when scraped (rpc.ServerMetrics.RegisterEtcd).
func (m *Member) registerEtcdMetrics() error {
	return m.metrics.RegisterEtcd(m.api.Registry(), rpc.EtcdSources{
		ID: m.id, Status: m.runtime.Status, Transport: m.transport, Messages: m.messages,
	})
}
