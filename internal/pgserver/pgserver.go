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
package pgserver

import (
	"bytes"
	"context"
	"database/sql"
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

// Options tune a cluster. The zero value is fine for production use.
type Options struct {
	// Fast turns off fsync and full-page writes: for throwaway test
	// clusters only, never for data that must survive a crash.
	Fast bool
	// Log receives one line per notable step; nil discards.
	Log func(format string, args ...any)
}

// Cluster is a private PostgreSQL cluster living in Dir.
type Cluster struct {
	Dir  string // absolute data directory
	bin  string // directory holding initdb, pg_ctl, postgres
	cred *syscall.Credential
	opts Options
}

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
	c := &Cluster{Dir: abs, bin: bin, opts: opts}
	if os.Geteuid() == 0 {
		cred, err := postgresCredential()
		if err != nil {
			return nil, err
		}
		c.cred = cred
	}
	if len(filepath.Join(abs, ".s.PGSQL.5432")) > 107 {
		return nil, fmt.Errorf("pgserver: data directory path %q is too long for a unix socket (max ~90 characters)", abs)
	}
	return c, nil
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
	if err := c.pgctl(ctx, "start", "-D", c.Dir, "-w", "-t", "60", "-s",
		"-l", filepath.Join(c.Dir, "server.log"), "-o", opts); err != nil {
		return false, fmt.Errorf("pgserver: start (see %s): %w", filepath.Join(c.Dir, "server.log"), err)
	}
	return true, nil
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

// URL returns a lib/pq connection URL for database name on this cluster.
func (c *Cluster) URL(name string) string {
	q := url.Values{}
	q.Set("host", c.Dir)
	q.Set("port", strconv.Itoa(socketPort))
	q.Set("sslmode", "disable")
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

func (c *Cluster) initdb(ctx context.Context) error {
	c.logf("pgserver: creating a PostgreSQL cluster in %s", c.Dir)
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
		if err := checkTraversable(filepath.Dir(c.Dir)); err != nil {
			return err
		}
	}
	args := []string{"-D", c.Dir, "-U", superuser, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-instructions"}
	if c.opts.Fast {
		args = append(args, "--no-sync")
	}
	if out, err := c.exec(ctx, "initdb", args...); err != nil {
		return fmt.Errorf("pgserver: initdb: %w\n%s", err, out)
	}
	return nil
}

// checkTraversable makes sure the unprivileged postgres user can reach the
// data directory: every parent needs the execute bit for others.
func checkTraversable(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("pgserver: %w", err)
		}
		if st.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("pgserver: the postgres user cannot enter %s (mode %v): "+
				"choose a data directory under a world-traversable path or chmod o+x %s", d, st.Mode().Perm(), d)
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
