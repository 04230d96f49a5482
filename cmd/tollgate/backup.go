package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate-pdp/tollgate/cache"
)

type backupFlags struct {
	addr, adminToken, dataDir string
	timeout                   time.Duration
	force                     bool
}

func newBackupCommand() *cobra.Command {
	var f backupFlags
	cmd := &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a consistent copy of the store to FILE (hot, through a running server with --addr)",
		Long: `Backup writes a consistent copy of the store to FILE (mode 0600).

With --addr it asks the running server (GET /v1/admin/backup, with --admin-token): the server
holds the store's lock, and the copy is taken in one read transaction while it keeps serving.
Without --addr it opens the store in --data-dir read-only (the server must be stopped).

The copy is written under a temporary name, synced, checked (bbolt consistency and schema, as
check-store) and only then renamed to FILE. It opens as a store by itself: to restore, stop the
server and put the file in place of <data-dir>/tollgate.db.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := bindEnv(cmd); err != nil {
				return err
			}
			rep, n, err := runBackup(cmd.Context(), f, args[0])
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "backup %s: %d bytes, %d vendors, check ok\n", args[0], n, rep.Vendors)
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "addr", "", "a running server's decision API (host:port); empty: open the store directly")
	fl.StringVar(&f.adminToken, "admin-token", "", "the server's admin token (with --addr)")
	fl.StringVar(&f.dataDir, "data-dir", "./data", "directory of the store file (without --addr)")
	fl.DurationVar(&f.timeout, "timeout", 5*time.Minute, "how long the whole backup may take")
	fl.BoolVar(&f.force, "force", false, "replace FILE when it exists")
	withEnvHelp(cmd)
	return cmd
}

func runBackup(ctx context.Context, f backupFlags, dst string) (cache.FileReport, int64, error) {
	var rep cache.FileReport
	if !f.force {
		if _, err := os.Stat(dst); err == nil {
			return rep, 0, fmt.Errorf("backup: %s exists (pass --force to replace it)", dst)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return rep, 0, fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file 0600 already; be explicit: a backup holds billing data.
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return rep, 0, fmt.Errorf("backup: %w", err)
	}
	var n int64
	if f.addr != "" {
		n, err = backupRemote(ctx, f, tmp)
	} else {
		n, err = cache.BackupFile(storePath(f.dataDir), tmp, 5*time.Second)
		if errors.Is(err, os.ErrNotExist) {
			err = fmt.Errorf("no store at %s", storePath(f.dataDir))
		} else if err != nil && strings.Contains(err.Error(), "locked by another process") {
			err = fmt.Errorf("%w (a server is running: back it up through it with --addr and --admin-token)", err)
		}
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return rep, n, fmt.Errorf("backup: %w", err)
	}
	if rep, err = cache.CheckFile(tmp.Name(), 5*time.Second); err != nil {
		return rep, n, fmt.Errorf("backup: the copy does not check: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return rep, n, fmt.Errorf("backup: %w", err)
	}
	return rep, n, syncDirOf(dst)
}

func backupRemote(ctx context.Context, f backupFlags, w io.Writer) (int64, error) {
	base := f.addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/v1/admin/backup", nil)
	if err != nil {
		return 0, fmt.Errorf("--addr: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+f.adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, fmt.Errorf("server answered %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return io.Copy(w, resp.Body)
}

func syncDirOf(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return nil
	}
	defer d.Close()
	_ = d.Sync()
	return nil
}
