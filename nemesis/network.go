package nemesis

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// The test network. Each member runs in a network namespace of its own (a
// test host) with one address, on its loopback device:
//
//	member i (1-based) of slot s:  10.211.s.(10+i)   namespace raftkv-nem<s>-m<i>
//	the host side's end for i:     10.211.s.(100+i)  veth rkn<s>c<i> in the root namespace
//
// Every pair of members is joined by a veth pair of its own (p<j> in
// member i's namespace, p<i> in member j's), with a host route to the
// other member's address through it, so that a fault can cut or thin one
// direction of one pair without touching any other: a classic BPF program
// on the link's egress (clsact, direct action) drops every packet (a cut)
// or a random share of them (loss). Dropped packets vanish silently, as
// in a real partition: a connection attempt times out, it is not refused.
// Clients reach every member from the root namespace through its own link,
// which faults never touch (Jepsen's clients, too, always reach their
// node).
//
// A slot (0..maxSlots-1) is one run's share of 10.211.0.0/16 and of the
// names; a run holds its slot's lock file for its whole life (flock, which
// the kernel releases when the process dies), so a slot whose lock can be
// taken belongs to no live run and whatever it still holds — namespaces,
// links, processes, mounts — is a crashed run's leftover, removed before
// the slot is used again.

const (
	// maxSlots bounds the runs that can share a machine.
	maxSlots = 32
	// stateDir holds the slots' lock files and work directories. It is a
	// fixed path, not os.TempDir(), so that a run with another TMPDIR still
	// finds a crashed run's leftovers.
	stateDir = "/tmp/raftkv-nemesis"
	// addressPrefix is the test's private address range (10.211.0.0/16).
	addressPrefix = "10.211"
	// ClientPort and PeerPort are where every member listens on its address.
	ClientPort = 2379
	PeerPort   = 2380
)

// Network is the test hosts of one run and the links between them.
type Network struct {
	// Slot is the run's share of addresses and names.
	Slot int
	// Members is the number of test hosts.
	Members int
	// lock is the slot's lock file, held until Close.
	lock *os.File
	// cut[i][j] says packets from member i to member j are dropped
	// (0-based); loss[i][j] is the share dropped at random (0 when cut).
	cut  [][]bool
	loss [][]float64
}

// lastSlot is the slot this process took last (for tests).
var lastSlot int

// ErrNoNamespaces says this process cannot make network namespaces (not
// root, no CAP_NET_ADMIN, no ip command): callers skip rather than fail.
var ErrNoNamespaces = errors.New("nemesis: cannot create network namespaces")

// Available reports whether this process can make the test network, and
// if not, why, in one line.
func Available() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: not root (network namespaces need CAP_NET_ADMIN)", ErrNoNamespaces)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("%w: no ip command (iproute2)", ErrNoNamespaces)
	}
	if _, err := exec.LookPath("tc"); err != nil {
		return fmt.Errorf("%w: no tc command (iproute2)", ErrNoNamespaces)
	}
	probe := fmt.Sprintf("raftkv-nemprobe-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		return fmt.Errorf("%w: ip netns add: %s", ErrNoNamespaces, strings.TrimSpace(string(out)))
	}
	_ = exec.Command("ip", "netns", "delete", probe).Run()
	return nil
}

// namespace is member i's (0-based) namespace name.
func namespace(slot, i int) string { return fmt.Sprintf("raftkv-nem%d-m%d", slot, i+1) }

// MemberAddr is member i's (0-based) address.
func MemberAddr(slot, i int) string { return fmt.Sprintf("%s.%d.%d", addressPrefix, slot, 10+i+1) }

// hostAddr is the root namespace's address on member i's client link.
func hostAddr(slot, i int) string { return fmt.Sprintf("%s.%d.%d", addressPrefix, slot, 100+i+1) }

// hostLink is the root namespace's end of member i's client link.
func hostLink(slot, i int) string { return fmt.Sprintf("rkn%dc%d", slot, i+1) }

// pairLink is the name, in member i's namespace, of its link to member j.
func pairLink(j int) string { return fmt.Sprintf("p%d", j+1) }

// slotDir is the work directory of a slot: data directories and mounts.
func slotDir(slot int) string { return filepath.Join(stateDir, fmt.Sprintf("slot%d", slot)) }

// run runs a command and returns its error with its output.
func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// runAll runs commands in order, stopping at the first error.
func runAll(cmds [][]string) error {
	for _, c := range cmds {
		if err := run(c[0], c[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// takeSlot locks a free slot, cleaning what a crashed run left in every
// slot it can lock on the way (see Network), and returns the lock held.
func takeSlot(logf func(string, ...any)) (int, *os.File, error) {
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return 0, nil, err
	}
	slot, lock := -1, (*os.File)(nil)
	for s := range maxSlots {
		f, err := os.OpenFile(filepath.Join(stateDir, fmt.Sprintf("slot%d.lock", s)), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return 0, nil, err
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			f.Close() // a live run holds it
			continue
		}
		if n := cleanSlot(s); n > 0 {
			logf("nemesis: removed %d leftovers of a crashed run in slot %d", n, s)
		}
		if slot < 0 {
			slot, lock = s, f
			continue
		}
		f.Close()
	}
	if slot < 0 {
		return 0, nil, fmt.Errorf("nemesis: all %d slots are in use by live runs", maxSlots)
	}
	return slot, lock, nil
}

// cleanSlot removes everything slot s may hold: processes in its
// namespaces, the namespaces (and with them the links), root-side links,
// mounts and the work directory. The caller holds the slot's lock. It
// returns how many things it removed.
func cleanSlot(s int) int {
	removed := 0
	prefix := fmt.Sprintf("raftkv-nem%d-", s)
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		removed += killNamespace(name)
		if run("ip", "netns", "delete", name) == nil {
			removed++
		}
	}
	links, _ := exec.Command("ip", "-o", "link", "show").Output()
	linkPrefix := fmt.Sprintf("rkn%dc", s)
	for _, line := range strings.Split(string(links), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(fields[1], ":"), "@")
		if strings.HasPrefix(name, linkPrefix) && run("ip", "link", "delete", name) == nil {
			removed++
		}
	}
	removed += unmountUnder(slotDir(s))
	if _, err := os.Stat(slotDir(s)); err == nil {
		if os.RemoveAll(slotDir(s)) == nil {
			removed++
		}
	}
	return removed
}

// killNamespace SIGKILLs every process in namespace name and returns how
// many there were.
func killNamespace(name string) int {
	out, _ := exec.Command("ip", "netns", "pids", name).Output()
	n := 0
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
			if syscall.Kill(pid, syscall.SIGKILL) == nil {
				n++
			}
		}
	}
	return n
}

// unmountUnder unmounts every mount point at or below dir (deepest first)
// and returns how many it unmounted.
func unmountUnder(dir string) int {
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return 0
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 2 && (fields[1] == dir || strings.HasPrefix(fields[1], dir+"/")) {
			points = append(points, fields[1])
		}
	}
	n := 0
	for i := len(points) - 1; i >= 0; i-- {
		if syscall.Unmount(points[i], syscall.MNT_DETACH) == nil {
			n++
		}
	}
	return n
}

// NewNetwork takes a slot and builds n test hosts joined pairwise, each
// reachable from the root namespace. On error nothing is left behind.
func NewNetwork(n int, logf func(string, ...any)) (*Network, error) {
	if n < 1 || n > 9 {
		return nil, fmt.Errorf("nemesis: %d members: want 1 to 9", n)
	}
	slot, lock, err := takeSlot(logf)
	if err != nil {
		return nil, err
	}
	lastSlot = slot
	nw := &Network{Slot: slot, Members: n, lock: lock}
	nw.cut, nw.loss = make([][]bool, n), make([][]float64, n)
	for i := range n {
		nw.cut[i], nw.loss[i] = make([]bool, n), make([]float64, n)
	}
	if err := nw.build(); err != nil {
		nw.Close()
		return nil, err
	}
	return nw, nil
}

// build makes the namespaces, the links and the routes.
func (nw *Network) build() error {
	s := nw.Slot
	for i := range nw.Members {
		ns, addr := namespace(s, i), MemberAddr(s, i)
		err := runAll([][]string{
			{"ip", "netns", "add", ns},
			{"ip", "-n", ns, "link", "set", "lo", "up"},
			{"ip", "-n", ns, "addr", "add", addr + "/32", "dev", "lo"},
			{"ip", "link", "add", hostLink(s, i), "type", "veth", "peer", "name", "host", "netns", ns},
			{"ip", "addr", "add", hostAddr(s, i) + "/32", "dev", hostLink(s, i)},
			{"ip", "link", "set", hostLink(s, i), "up"},
			{"ip", "route", "add", addr + "/32", "dev", hostLink(s, i), "src", hostAddr(s, i)},
			{"ip", "-n", ns, "link", "set", "host", "up"},
			{"ip", "-n", ns, "route", "add", hostAddr(s, i) + "/32", "dev", "host", "src", addr},
		})
		if err != nil {
			return err
		}
	}
	for i := range nw.Members {
		for j := i + 1; j < nw.Members; j++ {
			nsI, nsJ := namespace(s, i), namespace(s, j)
			err := runAll([][]string{
				{"ip", "link", "add", pairLink(j), "netns", nsI, "type", "veth", "peer", "name", pairLink(i), "netns", nsJ},
				{"ip", "-n", nsI, "link", "set", pairLink(j), "up"},
				{"ip", "-n", nsJ, "link", "set", pairLink(i), "up"},
				{"ip", "-n", nsI, "route", "add", MemberAddr(s, j) + "/32", "dev", pairLink(j), "src", MemberAddr(s, i)},
				{"ip", "-n", nsJ, "route", "add", MemberAddr(s, i) + "/32", "dev", pairLink(i), "src", MemberAddr(s, j)},
				{"ip", "netns", "exec", nsI, "tc", "qdisc", "add", "dev", pairLink(j), "clsact"},
				{"ip", "netns", "exec", nsJ, "tc", "qdisc", "add", "dev", pairLink(i), "clsact"},
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// Dir is the slot's work directory (created on demand).
func (nw *Network) Dir() string { return slotDir(nw.Slot) }

// Namespace is member i's namespace.
func (nw *Network) Namespace(i int) string { return namespace(nw.Slot, i) }

// Addr is member i's address.
func (nw *Network) Addr(i int) string { return MemberAddr(nw.Slot, i) }

// dropProgram is a classic BPF program for a clsact egress filter in
// direct-action mode that drops each packet with probability share:
// "A = a random u32; if A > threshold pass, else drop". tc takes it as
// "count,code jt jf k,...".
func dropProgram(share float64) string {
	const (
		ldRandom = "32 0 0 4294963256" // BPF_LD|BPF_W|BPF_ABS, SKF_AD_OFF + SKF_AD_RANDOM
		pass     = "6 0 0 0"           // BPF_RET|BPF_K, TC_ACT_OK
		drop     = "6 0 0 2"           // BPF_RET|BPF_K, TC_ACT_SHOT
	)
	if share >= 1 {
		return "1," + drop
	}
	threshold := uint32(share * float64(1<<32-1))
	return fmt.Sprintf("4,%s,37 0 1 %d,%s,%s", ldRandom, threshold, pass, drop) // BPF_JMP|BPF_JGT|BPF_K
}

// setDrop makes the link from member i to member j drop share of its
// packets (0: none, 1: all).
func (nw *Network) setDrop(i, j int, share float64) error {
	ns, dev := namespace(nw.Slot, i), pairLink(j)
	// Remove whatever filter is there; there may be none.
	_ = exec.Command("ip", "netns", "exec", ns, "tc", "filter", "delete", "dev", dev, "egress").Run()
	if share <= 0 {
		return nil
	}
	return run("ip", "netns", "exec", ns, "tc", "filter", "add", "dev", dev, "egress",
		"bpf", "da", "bytecode", dropProgram(share))
}

// Cut drops every packet from member i to member j (one way).
func (nw *Network) Cut(i, j int) error {
	if nw.cut[i][j] {
		return nil
	}
	if err := nw.setDrop(i, j, 1); err != nil {
		return err
	}
	nw.cut[i][j], nw.loss[i][j] = true, 0
	return nil
}

// Lose drops a random share of the packets from member i to member j.
func (nw *Network) Lose(i, j int, share float64) error {
	if err := nw.setDrop(i, j, share); err != nil {
		return err
	}
	nw.cut[i][j], nw.loss[i][j] = false, share
	return nil
}

// Heal restores every link between members.
func (nw *Network) Heal() error {
	var errs []error
	for i := range nw.Members {
		for j := range nw.Members {
			if nw.cut[i][j] || nw.loss[i][j] > 0 {
				errs = append(errs, nw.setDrop(i, j, 0))
				nw.cut[i][j], nw.loss[i][j] = false, 0
			}
		}
	}
	return errors.Join(errs...)
}

// Cuts describes the links cut now ("1→2 1→3"), for the progress line.
func (nw *Network) Cuts() string {
	var b bytes.Buffer
	for i := range nw.Members {
		for j := range nw.Members {
			if nw.cut[i][j] {
				fmt.Fprintf(&b, " %d→%d", i+1, j+1)
			}
		}
	}
	return strings.TrimSpace(b.String())
}

// Close kills whatever still runs in the namespaces, removes them, their
// links and mounts and the work directory, and releases the slot.
func (nw *Network) Close() error {
	if nw.lock == nil {
		return nil
	}
	cleanSlot(nw.Slot)
	err := nw.verifyClean()
	nw.lock.Close()
	nw.lock = nil
	return err
}

// verifyClean checks that no namespace or root-side link of the slot is
// left.
func (nw *Network) verifyClean() error {
	out, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(out), fmt.Sprintf("raftkv-nem%d-", nw.Slot)) {
		return fmt.Errorf("nemesis: namespaces of slot %d left behind:\n%s", nw.Slot, out)
	}
	links, _ := exec.Command("ip", "-o", "link", "show").Output()
	if strings.Contains(string(links), fmt.Sprintf("rkn%dc", nw.Slot)) {
		return fmt.Errorf("nemesis: links of slot %d left behind", nw.Slot)
	}
	return nil
}

// netemAvailable reports whether the kernel has netem (packet delay):
// it tries to add one to a veth in a scratch namespace.
func netemAvailable() (bool, string) {
	ns := fmt.Sprintf("raftkv-nemprobe-%d", os.Getpid())
	if err := run("ip", "netns", "add", ns); err != nil {
		return false, err.Error()
	}
	defer exec.Command("ip", "netns", "delete", ns).Run()
	if err := run("ip", "-n", ns, "link", "add", "name", "probe0", "type", "veth", "peer", "name", "probe1"); err != nil {
		return false, err.Error()
	}
	out, err := exec.Command("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "probe0", "root", "netem", "delay", "1ms").CombinedOutput()
	if err != nil {
		return false, "tc netem: " + strings.TrimSpace(string(out)) + " (no sch_netem in this kernel)"
	}
	return true, ""
}

// Delay adds delay (with jitter) to every packet from member i to j, with
// netem; only when netemAvailable.
func (nw *Network) Delay(i, j int, delayMs, jitterMs int) error {
	return run("ip", "netns", "exec", namespace(nw.Slot, i), "tc", "qdisc", "replace", "dev", pairLink(j), "root",
		"netem", "delay", fmt.Sprintf("%dms", delayMs), fmt.Sprintf("%dms", jitterMs))
}

// Undelay removes the delay of the link from member i to j.
func (nw *Network) Undelay(i, j int) {
	_ = exec.Command("ip", "netns", "exec", namespace(nw.Slot, i), "tc", "qdisc", "delete", "dev", pairLink(j), "root").Run()
}
