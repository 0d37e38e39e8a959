package simulator

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"
)

// Script is a run told by hand: a seed and its settings, and actions a
// student or a tour carries out at chosen virtual times (crash the leader,
// cut a link, write a key). A lab run in the viewer is a Script that grows
// an action at a time; a guided tour is a Script with captions. Like a
// seed, a Script replays to the same trace, byte for byte (`raftkv sim
// --replay FILE`).
type Script struct {
	// Version is the file format's version: 1.
	Version int `json:"version"`
	// Name names a tour (figure8); Title and Summary say what it teaches.
	Name    string `json:"name,omitempty"`
	Title   string `json:"title,omitempty"`
	Summary string `json:"summary,omitempty"`
	// Seed, Members (default 3) and Kind ("kv", the default, or "log")
	// set up the run as raftkv sim's flags do.
	Seed    uint64 `json:"seed"`
	Members int    `json:"members,omitempty"`
	Kind    string `json:"kind,omitempty"`
	// Faults are the random fault classes on top of the actions, as
	// --faults spells them; empty means none.
	Faults string `json:"faults,omitempty"`
	// Clients is how many background clients run (0: none; the actions'
	// writes and reads go through a client of their own), OpInterval the
	// time between a client's operations ("50ms").
	Clients    int    `json:"clients,omitempty"`
	OpInterval string `json:"op_interval,omitempty"`
	// Duration is the virtual time the run covers ("10s").
	Duration string `json:"duration"`
	// PreVote, CheckQuorum and Lease, when set, override what the seed
	// draws ("on" or "off").
	PreVote     string `json:"prevote,omitempty"`
	CheckQuorum string `json:"checkquorum,omitempty"`
	Lease       string `json:"lease,omitempty"`
	// MaxMsgBytes and MaxInflight, when set, override raft's
	// MaxSizePerMsg and MaxInflightMsgs (1 and 1 send one entry at a time,
	// each after the last was acknowledged: slow motion).
	MaxMsgBytes uint64 `json:"max_msg_bytes,omitempty"`
	MaxInflight int    `json:"max_inflight,omitempty"`
	// Actions, in time order.
	Actions []Action `json:"actions,omitempty"`
	// Captions are a tour's words, shown from their time on.
	Captions []Caption `json:"captions,omitempty"`
}

// Action is one thing done to the cluster at virtual time AtUs. Do is one
// of:
//
//	crash M, restart M      a member crashes (losing unsynced writes) / comes back
//	pause M, resume M       a member stops taking its inputs / takes them again
//	isolate M               cut every link to and from M
//	partition GROUPS        cut every link between groups ([[1,2],[3]])
//	cut FROM TO             cut the one-way link FROM -> TO
//	heal                    restore every link
//	drop-next FROM TO       lose the next message sent FROM -> TO
//	timeout M               M's election timeout fires now (it campaigns)
//	write M KEY VALUE       a client sends a write to M (set KEY, or append VALUE)
//	read M KEY              a client sends a linearizable read to M
//	read-local M KEY        a client reads M's own copy (serializable: may be stale)
//	add, remove M           the leader adds a new member / removes M
//	transfer M              the leader hands leadership to M
type Action struct {
	AtUs   int64      `json:"t_us"`
	Do     string     `json:"do"`
	Member uint64     `json:"member,omitempty"`
	To     uint64     `json:"to,omitempty"`
	Groups [][]uint64 `json:"groups,omitempty"`
	Key    string     `json:"key,omitempty"`
	Value  string     `json:"value,omitempty"`
}

// Caption is a tour's explanation, shown from AtUs on; Code points at the
// code that does what it explains ("raft/raft.go: maybeCommit").
type Caption struct {
	AtUs int64  `json:"t_us"`
	Text string `json:"text"`
	Code string `json:"code,omitempty"`
}

// actionNames are the actions a Script may use.
var actionNames = []string{"crash", "restart", "pause", "resume", "isolate", "partition", "cut", "heal",
	"drop-next", "timeout", "write", "read", "read-local", "add", "remove", "transfer"}

// ParseScript reads a Script from JSON and checks it.
func ParseScript(data []byte) (Script, error) {
	var sc Script
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sc); err != nil {
		return Script{}, fmt.Errorf("script: %w", err)
	}
	if _, err := sc.Config(); err != nil {
		return Script{}, err
	}
	return sc, nil
}

// Marshal writes the Script as indented JSON.
func (sc Script) Marshal() []byte {
	b, err := json.MarshalIndent(sc, "", "  ")
	if err != nil {
		panic(err) // a Script is plain data
	}
	return append(b, '\n')
}

// Config turns the Script into a simulator Config (without a trace).
func (sc Script) Config() (Config, error) {
	if sc.Version != 1 {
		return Config{}, fmt.Errorf("script: version %d, this raftkv reads version 1", sc.Version)
	}
	cfg := Config{Seed: sc.Seed, Members: sc.Members, Clients: sc.Clients, NoClients: sc.Clients == 0,
		NoLiveness: true, NoSwarm: true}
	if cfg.Members == 0 {
		cfg.Members = 3
	}
	if cfg.Members < 1 || cfg.Members > 7 {
		return Config{}, fmt.Errorf("script: members %d: must be 1 to 7", cfg.Members)
	}
	var err error
	if cfg.Kind, err = ParseKind(sc.Kind); err != nil {
		return Config{}, fmt.Errorf("script: %w", err)
	}
	if sc.Faults == "" || sc.Faults == "none" {
		cfg.NoFaults = true
	} else if cfg.Faults, err = ParseFaults(sc.Faults); err != nil {
		return Config{}, fmt.Errorf("script: %w", err)
	}
	if cfg.Duration, err = time.ParseDuration(sc.Duration); err != nil || cfg.Duration <= 0 {
		return Config{}, fmt.Errorf("script: duration %q: want a positive duration such as 10s", sc.Duration)
	}
	if sc.OpInterval != "" {
		if cfg.OpInterval, err = time.ParseDuration(sc.OpInterval); err != nil || cfg.OpInterval <= 0 {
			return Config{}, fmt.Errorf("script: op_interval %q: want a positive duration such as 50ms", sc.OpInterval)
		}
	}
	for _, o := range []struct {
		name, value string
		into        *Switch
	}{{"prevote", sc.PreVote, &cfg.PreVote}, {"checkquorum", sc.CheckQuorum, &cfg.CheckQuorum}, {"lease", sc.Lease, &cfg.Lease}} {
		switch o.value {
		case "":
		case "on":
			*o.into = On
		case "off":
			*o.into = Off
		default:
			return Config{}, fmt.Errorf("script: %s %q: want on or off", o.name, o.value)
		}
	}
	slots := uint64(cfg.Members + maxAdded)
	last := int64(-1)
	for k, a := range sc.Actions {
		if err := a.check(cfg.Members, slots); err != nil {
			return Config{}, fmt.Errorf("script: action %d (%s at %dus): %w", k+1, a.Do, a.AtUs, err)
		}
		if a.AtUs < last {
			return Config{}, fmt.Errorf("script: action %d (%s) at %dus comes before the one above it (%dus): actions go in time order", k+1, a.Do, a.AtUs, last)
		}
		last = a.AtUs
	}
	if sc.MaxInflight < 0 {
		return Config{}, fmt.Errorf("script: max_inflight %d: must be positive", sc.MaxInflight)
	}
	cfg.MaxSizePerMsg, cfg.MaxInflightMsgs = sc.MaxMsgBytes, sc.MaxInflight
	cfg.Actions = sc.Actions
	return cfg, nil
}

// check says what is wrong with an action, if anything.
func (a Action) check(members int, slots uint64) error {
	if !slices.Contains(actionNames, a.Do) {
		return fmt.Errorf("unknown action (known: %s)", strings.Join(actionNames, ", "))
	}
	if a.AtUs < 0 {
		return fmt.Errorf("negative time")
	}
	member := func(id uint64) error {
		if id < 1 || id > slots {
			return fmt.Errorf("member %d: members are 1 to %d", id, slots)
		}
		return nil
	}
	switch a.Do {
	case "heal", "add":
		return nil
	case "partition":
		if len(a.Groups) < 2 {
			return fmt.Errorf("a partition needs two groups or more, such as [[1,2],[3]]")
		}
		for _, g := range a.Groups {
			for _, id := range g {
				if err := member(id); err != nil {
					return err
				}
			}
		}
		return nil
	case "cut", "drop-next":
		if err := member(a.To); err != nil {
			return err
		}
		if a.To == a.Member {
			return fmt.Errorf("a link joins two members, not %d to itself", a.Member)
		}
	}
	return member(a.Member)
}

// RunScript runs sc, writing its trace to trace (if not nil).
func RunScript(sc Script, trace io.Writer) (Result, error) {
	return RunScriptWithHistory(sc, trace, "")
}

// RunScriptWithHistory runs sc as RunScript does and, for key-space
// members, writes porcupine's visualisation of the clients' history to the
// file historyPath (if not empty).
func RunScriptWithHistory(sc Script, trace io.Writer, historyPath string) (Result, error) {
	cfg, err := sc.Config()
	if err != nil {
		return Result{}, err
	}
	cfg.Trace, cfg.HistoryVisualization = trace, historyPath
	return Run(cfg), nil
}

//go:embed tours/*.json
var tourFiles embed.FS

// Tours returns the guided tours shipped with raftkv, by name.
func Tours() []Script {
	entries, err := tourFiles.ReadDir("tours")
	if err != nil {
		panic(err) // embedded at build time
	}
	var tours []Script
	for _, e := range entries {
		data, err := tourFiles.ReadFile(path.Join("tours", e.Name()))
		if err != nil {
			panic(err)
		}
		sc, err := ParseScript(data)
		if err != nil {
			panic(fmt.Sprintf("tour %s: %v", e.Name(), err)) // tested by TestToursParse
		}
		tours = append(tours, sc)
	}
	return tours
}

// Tour returns the tour of that name.
func Tour(name string) (Script, error) {
	var names []string
	for _, t := range Tours() {
		if t.Name == name {
			return t, nil
		}
		names = append(names, t.Name)
	}
	return Script{}, fmt.Errorf("no tour named %q (tours: %s)", name, strings.Join(names, ", "))
}
