package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftkv/raftkv/server"
	"github.com/raftkv/raftkv/storage"
)

// backupAttempts bounds the copies taken of a running member's data dir
// before backup gives up; backupRetry is the pause between two.
const (
	backupAttempts = 10
	backupRetry    = 200 * time.Millisecond
)

func init() {
	var dataDir, backupDir, walDir, backupWALDir string
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Back up a member's data dir, running or stopped (etcdctl backup)",
		Long: `Copy a member's data dir — its snapshots, its WAL and identity.json — into
--backup-dir, as 'etcdctl backup' does. The member may be running: the copy is
checked by replaying it as a restarting member would (every WAL record's
checksum, the snapshot the WAL needs, every committed entry applied), and taken
again if the member changed its files meanwhile, so a backup that is written
is one a member can start from. The member's own files are only read.

To restore, copy the backup into place and start a new one-member cluster from
it with 'raftkv serve --data-dir DIR --force-new-cluster ...' (new member and
cluster IDs, every key kept with its indexes), then add members with
'raftkv member add'. docs/operations.md walks through it.`,
		Example: `  raftkv backup --data-dir m1.data --backup-dir /backups/raftkv-2024-05-01`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if walDir != "" || backupWALDir != "" {
				return errors.New("backup: raftkv keeps the WAL in the data dir: --wal-dir and --backup-wal-dir must not be set")
			}
			st, err := backup(dataDir, backupDir)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "backed up %s to %s: cluster %x, %d members, committed index %d (term %d), etcd index %d\n",
				dataDir, backupDir, st.ClusterID, len(st.Members), st.Index, st.Term, st.StoreIndex)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "the member's data dir (required)")
	cmd.Flags().StringVar(&backupDir, "backup-dir", "", "where to write the backup: a new or empty directory (required)")
	// etcdctl backup's flags for a WAL kept apart: raftkv keeps it in the
	// data dir, always.
	cmd.Flags().StringVar(&walDir, "wal-dir", "", "accepted for compatibility with etcdctl; must be empty (raftkv's WAL is in the data dir)")
	cmd.Flags().StringVar(&backupWALDir, "backup-wal-dir", "", "accepted for compatibility with etcdctl; must be empty")
	rootCmd.AddCommand(cmd)
}

// backup copies dataDir into backupDir (which must not exist or be empty)
// and returns what the copy holds.
func backup(dataDir, backupDir string) (server.DataState, error) {
	if dataDir == "" || backupDir == "" {
		return server.DataState{}, errors.New("backup: give both --data-dir and --backup-dir")
	}
	if _, err := os.Stat(filepath.Join(dataDir, "wal")); err != nil {
		return server.DataState{}, fmt.Errorf("backup: %s is not a raftkv data dir (no wal directory): %w", dataDir, err)
	}
	if entries, err := os.ReadDir(backupDir); err == nil && len(entries) > 0 {
		return server.DataState{}, fmt.Errorf("backup: %s is not empty: back up into a new directory", backupDir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return server.DataState{}, fmt.Errorf("backup: %w", err)
	}
	parent := filepath.Dir(filepath.Clean(backupDir))
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return server.DataState{}, fmt.Errorf("backup: %w", err)
	}
	var lastErr error
	for attempt := range backupAttempts {
		tmp, err := os.MkdirTemp(parent, "."+filepath.Base(backupDir)+".tmp-")
		if err != nil {
			return server.DataState{}, fmt.Errorf("backup: %w", err)
		}
		st, err := copyAndCheck(dataDir, tmp)
		if err == nil {
			if err := os.Rename(tmp, backupDir); err != nil {
				os.RemoveAll(tmp)
				return server.DataState{}, fmt.Errorf("backup: put the backup in place: %w", err)
			}
			return st, storage.OSFS{}.SyncDir(parent)
		}
		os.RemoveAll(tmp)
		lastErr = err
		if attempt+1 < backupAttempts {
			time.Sleep(backupRetry)
		}
	}
	return server.DataState{}, fmt.Errorf("backup: no consistent copy of %s in %d attempts (is it damaged? restore from an older backup): %w",
		dataDir, backupAttempts, lastErr)
}

// copyAndCheck copies the snapshots, then the WAL segments, then the
// identity file of dataDir into dst, fsyncs them, and replays the copy.
// A member running meanwhile may add to its last segment (the copy then
// ends in a torn write, which replay cuts, as recovery would), take a
// snapshot or drop old segments (the copy then lacks a file it needs, and
// replay says so): the caller takes another copy.
func copyAndCheck(dataDir, dst string) (server.DataState, error) {
	for _, sub := range []struct {
		dir, ext string
	}{{"snap", ".snap"}, {"wal", ".wal"}} {
		names, err := storage.OSFS{}.List(filepath.Join(dataDir, sub.dir))
		if err != nil && !(sub.dir == "snap" && errors.Is(err, fs.ErrNotExist)) {
			return server.DataState{}, fmt.Errorf("list %s: %w", filepath.Join(dataDir, sub.dir), err)
		}
		if err := os.MkdirAll(filepath.Join(dst, sub.dir), 0o700); err != nil {
			return server.DataState{}, err
		}
		for _, n := range names {
			if strings.HasSuffix(n, sub.ext) {
				if err := copyFile(filepath.Join(dataDir, sub.dir, n), filepath.Join(dst, sub.dir, n)); err != nil {
					return server.DataState{}, err
				}
			}
		}
		if err := (storage.OSFS{}).SyncDir(filepath.Join(dst, sub.dir)); err != nil {
			return server.DataState{}, err
		}
	}
	err := copyFile(filepath.Join(dataDir, "identity.json"), filepath.Join(dst, "identity.json"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return server.DataState{}, err
	}
	return server.ReadDataDir(storage.OSFS{}, dst)
}

// copyFile copies src to dst and fsyncs dst.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}
