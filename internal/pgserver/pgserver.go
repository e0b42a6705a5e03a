// Package pgserver runs a private PostgreSQL cluster from the machine's own
// PostgreSQL binaries, so that Vigía and its tests need no database
// installed and configured by hand.
//
// The cluster listens only on a unix socket inside its data directory (no TCP
// port), so only the directory's owner — and root — can reach it, and trust
// authentication is safe. initdb and postgres refuse to run as root: when the
// caller is root, the cluster is created and run as the unprivileged
// "postgres" user that Debian's postgresql package creates, and the data
// directory belongs to that user.
//
// A checkout in a home directory or a mktemp folder sits under a parent of
// mode 0700 that the postgres user cannot enter. Rather than change the mode
// of the user's folders, a root caller then keeps the cluster under
// RelocationRoot (a directory the postgres user can reach), in a folder
// named after the absolute data directory, and writes the mapping into the
// data directory (file LocationFile), so that every later command finds the
// cluster again from the same --dir.
package pgserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/lib/pq" // the driver the URL is for
)

// ErrBinariesMissing is returned when no PostgreSQL server binaries are found.
var ErrBinariesMissing = errors.New("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: " +
	"install them with `apt-get install postgresql` (Debian/Ubuntu), or set DATABASE_URL to use an existing server")

// socketPort names the socket file (.s.PGSQL.<port>); the cluster opens no
// TCP port, so any number works and this one never collides.
const socketPort = 5432

// superuser is the cluster's bootstrap role, used by Vigía.
const superuser = "vigia"

// RelocationRoot holds the clusters of data directories the postgres user
// cannot reach (see the package comment).
const RelocationRoot = "/var/lib/vigia/clusters"

// LocationFile, inside a data directory, names the directory that really
// holds its cluster when that had to be relocated.
const LocationFile = "CLUSTER_LOCATION"

// Options tune a cluster. The zero value is fine for production use.
type Options struct {
	// Fast turns off fsync and full-page writes: for throwaway test
	// clusters only, never for data that must survive a crash.
	Fast bool
	// Log receives one line per notable step; nil discards.
	Log func(format string, args ...any)
	// RelocationRoot overrides the package's RelocationRoot (for tests).
	RelocationRoot string
}

// Cluster is a private PostgreSQL cluster for the data directory Home,
// living in Dir: the same directory, unless it had to be relocated.
type Cluster struct {
	Home string // absolute data directory the caller named
	Dir  string // absolute directory holding the cluster (PGDATA)
	bin  string // directory holding initdb, pg_ctl, postgres
	cred *syscall.Credential
	opts Options
}

// Relocated reports whether the cluster lives outside its data directory.
func (c *Cluster) Relocated() bool { return c.Dir != c.Home }

// Open locates the binaries and prepares (but does not start) the cluster in
// dir, which may not exist yet.
func Open(dir string, opts Options) (*Cluster, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("pgserver: data directory %q: %w", dir, err)
	}
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	c := &Cluster{Home: abs, Dir: abs, bin: bin, opts: opts}
	if c.opts.RelocationRoot == "" {
		c.opts.RelocationRoot = RelocationRoot
	}
	if os.Geteuid() == 0 {
		cred, err := postgresCredential()
		if err != nil {
			return nil, err
		}
		c.cred = cred
	}
	if err := c.locate(); err != nil {
		return nil, err
	}
	if len(filepath.Join(c.Dir, ".s.PGSQL.5432")) > 107 {
		return nil, fmt.Errorf("pgserver: data directory path %q is too long for a unix socket (max ~90 characters)", c.Dir)
	}
	return c, nil
}

// locate decides where the cluster of c.Home lives: where a LocationFile
// says, else in c.Home itself, unless we are root and the postgres user
// cannot reach c.Home (a 0700 home or temporary folder on the way).
func (c *Cluster) locate() error {
	if _, err := os.Stat(filepath.Join(c.Home, "PG_VERSION")); err == nil {
		return nil
	}
	switch dir, err := readLocation(c.Home); {
	case err != nil:
		return err
	case dir != "":
		c.Dir = dir
		return nil
	}
	if c.cred == nil || reachable(filepath.Dir(c.Home), c.cred) == nil {
		return nil
	}
	sum := sha256.Sum256([]byte(c.Home))
	c.Dir = filepath.Join(c.opts.RelocationRoot, "c-"+hex.EncodeToString(sum[:8]))
	return nil
}

// readLocation returns the directory a data directory's LocationFile names,
// or "" when there is none.
func readLocation(home string) (string, error) {
	b, err := os.ReadFile(filepath.Join(home, LocationFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("pgserver: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !filepath.IsAbs(line) {
			return "", fmt.Errorf("pgserver: %s: want an absolute directory, got %q", filepath.Join(home, LocationFile), line)
		}
		return filepath.Clean(line), nil
	}
	return "", fmt.Errorf("pgserver: %s names no directory", filepath.Join(home, LocationFile))
}

// writeLocation records in the data directory where its cluster lives.
func (c *Cluster) writeLocation() error {
	if err := os.MkdirAll(c.Home, 0o700); err != nil {
		return fmt.Errorf("pgserver: create %s: %w", c.Home, err)
	}
	text := "# Vigía's private PostgreSQL for this directory lives in the directory below,\n" +
		"# because the postgres user cannot enter this folder. `vigia pg` finds it through\n" +
		"# this file; `vigia pg remove` deletes both.\n" + c.Dir + "\n"
	tmp := filepath.Join(c.Home, LocationFile+".tmp")
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(c.Home, LocationFile)); err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	return nil
}

// findBinaries looks for pg_ctl in PATH, then in Debian's versioned
// directories (newest first), since Debian keeps them off PATH.
func findBinaries() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	sort.Slice(matches, func(i, j int) bool { return pgVersion(matches[i]) > pgVersion(matches[j]) })
	for _, m := range matches {
		dir := filepath.Dir(m)
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	return "", ErrBinariesMissing
}

func pgVersion(pgctl string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(pgctl))))
	return v
}

func postgresCredential() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgserver: running as root, PostgreSQL must run as an unprivileged user, "+
			"but there is no \"postgres\" user (install the postgresql package, which creates it): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// Initialized reports whether the data directory holds a cluster.
func (c *Cluster) Initialized() bool {
	_, err := os.Stat(filepath.Join(c.Dir, "PG_VERSION"))
	return err == nil
}

// Running reports whether the cluster's postmaster is up.
func (c *Cluster) Running(ctx context.Context) bool {
	if !c.Initialized() {
		return false
	}
	// pg_ctl status exits 0 when running, 3 when not.
	return c.pgctl(ctx, "status", "-D", c.Dir) == nil
}

// Start initialises the cluster if needed and starts it unless it is already
// running. It reports whether this call started the server, so the caller
// knows whether stopping it is its job.
func (c *Cluster) Start(ctx context.Context) (started bool, err error) {
	if !c.Initialized() {
		if err := c.initdb(ctx); err != nil {
			return false, err
		}
	}
	if c.Running(ctx) {
		c.logf("pgserver: reusing the running cluster in %s", c.Dir)
		return false, nil
	}
	c.logf("pgserver: starting PostgreSQL in %s", c.Dir)
	// Settings go on the command line, not in postgresql.conf, so a moved
	// checkout still finds its socket in its own data directory.
	opts := fmt.Sprintf("-c listen_addresses='' -c unix_socket_directories='%s' -p %d", c.Dir, socketPort)
	if c.opts.Fast {
		opts += " -c fsync=off -c full_page_writes=off -c synchronous_commit=off"
	}
	logFile := filepath.Join(c.Dir, "server.log")
	for attempt := 1; ; attempt++ {
		err := c.pgctl(ctx, "start", "-D", c.Dir, "-w", "-t", "60", "-s", "-l", logFile, "-o", opts)
		if err == nil {
			return true, nil
		}
		// After a kill -9 of the postmaster its children take a moment to
		// notice and exit; until then the new postmaster refuses to start
		// over their shared memory.
		if attempt < 20 && lastLogMentions(logFile, "pre-existing shared memory block") {
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
				continue
			}
		}
		return false, fmt.Errorf("pgserver: start (see %s): %w", logFile, err)
	}
}

// lastLogMentions reports whether the tail of the server log holds s.
func lastLogMentions(logFile, s string) bool {
	b, err := os.ReadFile(logFile)
	if err != nil {
		return false
	}
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return bytes.Contains(b, []byte(s))
}

// Stop shuts the cluster down, letting running transactions roll back.
func (c *Cluster) Stop(ctx context.Context) error {
	if !c.Running(ctx) {
		return nil
	}
	c.logf("pgserver: stopping PostgreSQL in %s", c.Dir)
	if err := c.pgctl(ctx, "stop", "-D", c.Dir, "-m", "fast", "-w", "-t", "60", "-s"); err != nil {
		return fmt.Errorf("pgserver: stop: %w", err)
	}
	return nil
}

// Kill stops the postmaster the hard way (SIGKILL-like immediate mode), for
// fault tests: on the next start PostgreSQL runs crash recovery.
func (c *Cluster) Kill(ctx context.Context) error {
	if err := c.pgctl(ctx, "stop", "-D", c.Dir, "-m", "immediate", "-w", "-s"); err != nil {
		return fmt.Errorf("pgserver: immediate stop: %w", err)
	}
	return nil
}

// Remove stops the cluster if it runs and deletes it with its data
// directory (and the relocated cluster, if any): for throwaway clusters.
func (c *Cluster) Remove(ctx context.Context) error {
	// Only a cluster's own folders are deleted: a mistyped --dir pointing at
	// a folder of the user's must not be emptied.
	if entries, err := os.ReadDir(c.Home); err == nil && len(entries) > 0 && !c.Initialized() {
		if _, err := os.Stat(filepath.Join(c.Home, LocationFile)); err != nil {
			return fmt.Errorf("pgserver: %s holds no PostgreSQL cluster; not removing it", c.Home)
		}
	}
	if c.Running(ctx) {
		if err := c.pgctl(ctx, "stop", "-D", c.Dir, "-m", "immediate", "-w", "-s"); err != nil {
			return fmt.Errorf("pgserver: stop before removing: %w", err)
		}
	}
	for _, d := range []string{c.Dir, c.Home} {
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("pgserver: remove %s: %w", d, err)
		}
	}
	return nil
}

// URL returns a lib/pq connection URL for database name on this cluster.
func (c *Cluster) URL(name string) string {
	q := url.Values{}
	q.Set("host", c.Dir)
	q.Set("port", strconv.Itoa(socketPort))
	q.Set("sslmode", "disable")
	return (&url.URL{Scheme: "postgres", User: url.User(superuser), Path: "/" + name, RawQuery: q.Encode()}).String()
}

// FailoverURL returns a lib/pq URL for database name that lists the
// sockets of clusters in order and asks for target_session_attrs=read-write:
// a connection goes to the first of them that accepts writes, so a client
// finds the new primary by itself after a standby is promoted.
func FailoverURL(name string, clusters ...*Cluster) string {
	hosts := make([]string, len(clusters))
	for i, c := range clusters {
		hosts[i] = c.Dir
	}
	q := url.Values{}
	q.Set("host", strings.Join(hosts, ","))
	q.Set("port", strconv.Itoa(socketPort))
	q.Set("sslmode", "disable")
	q.Set("target_session_attrs", "read-write")
	q.Set("connect_timeout", "5")
	return (&url.URL{Scheme: "postgres", User: url.User(superuser), Path: "/" + name, RawQuery: q.Encode()}).String()
}

// CreateDatabase creates database name unless it exists.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) error {
	db, err := sql.Open("postgres", c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("pgserver: connect: %w", err)
	}
	defer db.Close()
	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("pgserver: look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := db.ExecContext(ctx, `CREATE DATABASE `+quoteIdent(name)); err != nil {
		return fmt.Errorf("pgserver: create database %s: %w", name, err)
	}
	return nil
}

// DropDatabase drops database name, disconnecting its sessions.
func (c *Cluster) DropDatabase(ctx context.Context, name string) error {
	db, err := sql.Open("postgres", c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("pgserver: connect: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `DROP DATABASE IF EXISTS `+quoteIdent(name)+` WITH (FORCE)`); err != nil {
		return fmt.Errorf("pgserver: drop database %s: %w", name, err)
	}
	return nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func quoteLiteral(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

func (c *Cluster) initdb(ctx context.Context) error {
	if c.Relocated() {
		if err := c.prepareRelocated(ctx); err != nil {
			return err
		}
	}
	c.logf("pgserver: creating a PostgreSQL cluster in %s", c.Dir)
	if err := c.makeDataDir(); err != nil {
		return err
	}
	args := []string{"-D", c.Dir, "-U", superuser, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-instructions"}
	if c.opts.Fast {
		args = append(args, "--no-sync")
	}
	if out, err := c.exec(ctx, "initdb", args...); err != nil {
		return fmt.Errorf("pgserver: initdb: %w\n%s", err, out)
	}
	if c.Relocated() {
		// Written last: a data directory that names its cluster names one
		// that is whole.
		return c.writeLocation()
	}
	return nil
}

// makeDataDir creates the empty data directory, owned by the user the
// server runs as.
func (c *Cluster) makeDataDir() error {
	// Parents stay traversable: as root, the postgres user must reach the
	// data directory through them.
	if err := os.MkdirAll(filepath.Dir(c.Dir), 0o755); err != nil {
		return fmt.Errorf("pgserver: create %s: %w", filepath.Dir(c.Dir), err)
	}
	if err := os.Mkdir(c.Dir, 0o700); err != nil && !os.IsExist(err) {
		return fmt.Errorf("pgserver: create %s: %w", c.Dir, err)
	}
	if c.cred != nil {
		// The postgres user must own its data directory and be able to
		// reach it through every parent.
		if err := os.Chown(c.Dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return fmt.Errorf("pgserver: give %s to the postgres user: %w", c.Dir, err)
		}
		if err := reachable(filepath.Dir(c.Dir), c.cred); err != nil {
			return err
		}
	}
	return nil
}

// StandbyOf creates this (not yet initialised) cluster as a streaming
// replication standby of primary, which must be running: pg_basebackup
// copies it and, with -R, writes standby.signal and a primary_conninfo
// naming primary's socket and application_name name (the name
// WaitForStandby takes). Start then runs it as a hot standby, read-only until Promote.
func (c *Cluster) StandbyOf(ctx context.Context, primary *Cluster, name string) error {
	if c.Initialized() {
		return fmt.Errorf("pgserver: %s already holds a cluster", c.Dir)
	}
	if c.Relocated() {
		if err := c.prepareRelocated(ctx); err != nil {
			return err
		}
	}
	c.logf("pgserver: copying the cluster in %s to the standby %s in %s", primary.Dir, name, c.Dir)
	if err := c.makeDataDir(); err != nil {
		return err
	}
	conninfo := fmt.Sprintf("host=%s port=%d user=%s application_name=%s", primary.Dir, socketPort, superuser, name)
	args := []string{"-D", c.Dir, "-d", conninfo, "-R", "-X", "stream", "-c", "fast"}
	if c.opts.Fast {
		args = append(args, "--no-sync")
	}
	if out, err := c.exec(ctx, "pg_basebackup", args...); err != nil {
		return fmt.Errorf("pgserver: pg_basebackup: %w\n%s", err, out)
	}
	// The primary's log and socket lock file came along with the copy (both
	// live in its data directory): the standby has its own.
	for _, f := range []string{"server.log", fmt.Sprintf(".s.PGSQL.%d.lock", socketPort)} {
		if err := os.Remove(filepath.Join(c.Dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("pgserver: standby: %w", err)
		}
	}
	if c.Relocated() {
		return c.writeLocation()
	}
	return nil
}

// WaitForStandby makes every later commit on this (primary) cluster wait
// until the standby of application_name name has flushed it, so that a
// commit the client saw succeed survives the primary's loss. It is set once
// the standby runs: set earlier, the primary's own commits would wait for a
// standby not there yet.
func (c *Cluster) WaitForStandby(ctx context.Context, name string) error {
	db, err := sql.Open("postgres", c.URL("postgres"))
	if err != nil {
		return fmt.Errorf("pgserver: connect: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `ALTER SYSTEM SET synchronous_standby_names = `+quoteLiteral(quoteIdent(name))); err != nil {
		return fmt.Errorf("pgserver: synchronous standby %s: %w", name, err)
	}
	if _, err := db.ExecContext(ctx, `SELECT pg_reload_conf()`); err != nil {
		return fmt.Errorf("pgserver: reload configuration: %w", err)
	}
	// The reload is asynchronous: wait until the standby is listed as sync.
	for {
		var state string
		err := db.QueryRowContext(ctx, `SELECT sync_state FROM pg_stat_replication WHERE application_name = $1`, name).Scan(&state)
		if err == nil && state == "sync" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pgserver: standby %s never became synchronous (state %q, %v): %w", name, state, err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Promote turns a running standby into a primary that accepts writes and
// waits until it does.
func (c *Cluster) Promote(ctx context.Context) error {
	c.logf("pgserver: promoting the standby in %s", c.Dir)
	if err := c.pgctl(ctx, "promote", "-D", c.Dir, "-w", "-t", "60", "-s"); err != nil {
		return fmt.Errorf("pgserver: promote: %w", err)
	}
	return nil
}

// prepareRelocated readies the relocation root for a new cluster. A folder
// already there with no LocationFile pointing at it belonged to a data
// directory of the same path that has since been deleted: its data went
// with it, so the leftover is removed rather than silently reused.
func (c *Cluster) prepareRelocated(ctx context.Context) error {
	if err := os.MkdirAll(c.opts.RelocationRoot, 0o755); err != nil {
		return fmt.Errorf("pgserver: create %s: %w", c.opts.RelocationRoot, err)
	}
	if _, err := os.Stat(c.Dir); err == nil {
		c.logf("pgserver: removing %s, the leftover cluster of a deleted %s", c.Dir, c.Home)
		if c.Running(ctx) {
			if err := c.pgctl(ctx, "stop", "-D", c.Dir, "-m", "immediate", "-w", "-s"); err != nil {
				return fmt.Errorf("pgserver: stop the leftover cluster in %s: %w", c.Dir, err)
			}
		}
		if err := os.RemoveAll(c.Dir); err != nil {
			return fmt.Errorf("pgserver: %w", err)
		}
	}
	c.logf("pgserver: the postgres user cannot enter %s; keeping its cluster in %s", c.Home, c.Dir)
	return nil
}

// reachable reports whether the user cred can enter dir: every existing
// directory on the way needs the execute bit for that user (as owner,
// group or other). Directories not created yet will be made traversable.
func reachable(dir string, cred *syscall.Credential) error {
	for d := dir; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return fmt.Errorf("pgserver: %w", err)
		default:
			perm := st.Mode().Perm()
			bit := os.FileMode(0o001)
			if sys, ok := st.Sys().(*syscall.Stat_t); ok {
				switch {
				case sys.Uid == cred.Uid:
					bit = 0o100
				case sys.Gid == cred.Gid:
					bit = 0o010
				}
			}
			if perm&bit == 0 {
				return fmt.Errorf("pgserver: the postgres user cannot enter %s (mode %v)", d, perm)
			}
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

func (c *Cluster) pgctl(ctx context.Context, args ...string) error {
	out, err := c.exec(ctx, "pg_ctl", args...)
	if err != nil && args[0] != "status" {
		return fmt.Errorf("%w: %s", err, bytes.TrimSpace(out))
	}
	return err
}

func (c *Cluster) exec(ctx context.Context, prog string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, prog), args...)
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
		cmd.Env = append(cmd.Env, "HOME="+c.Dir, "USER=postgres")
	}
	// The server must outlive a vigia that is killed, so it is not tied to
	// our process group's signals.
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	return out.Bytes(), err
}

func (c *Cluster) logf(format string, args ...any) {
	if c.opts.Log != nil {
		c.opts.Log(format, args...)
	}
}
