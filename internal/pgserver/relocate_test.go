package pgserver

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/internal/testpeer"
)

// TestRelocatedClusterUnderPrivateParent is the checkout in a 0700 home or
// mktemp folder, run as root: the postgres user cannot enter it, so the
// cluster lives under the relocation root, and every later Open of the same
// data directory finds it again — after a stop, and after a kill -9 of the
// postmaster — without the user's folders changing mode.
func TestRelocatedClusterUnderPrivateParent(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("relocation happens only as root (a laptop user runs the cluster in the data directory: TestLifecycle)")
	}
	private := t.TempDir() // mode 0700, like a home directory
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(private, "checkout", "var", "pg")
	reloc := traversableTempDir(t)
	open := func() *Cluster {
		t.Helper()
		c, err := Open(home, Options{RelocationRoot: reloc})
		if errors.Is(err, ErrBinariesMissing) {
			testpeer.Missing(t, "PostgreSQL", "apt-get install postgresql")
		}
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	c := open()
	t.Cleanup(func() { c.Remove(context.Background()) })
	if !c.Relocated() || !strings.HasPrefix(c.Dir, reloc+string(filepath.Separator)) {
		t.Fatalf("cluster of %s kept in %s; want it relocated under %s", home, c.Dir, reloc)
	}
	if started, err := c.Start(ctx); err != nil || !started {
		t.Fatalf("Start = %v, %v", started, err)
	}
	if err := c.CreateDatabase(ctx, "vigia"); err != nil {
		t.Fatal(err)
	}
	execSQL(t, ctx, c, `CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)`)
	if b, err := os.ReadFile(filepath.Join(home, LocationFile)); err != nil || !strings.Contains(string(b), c.Dir) {
		t.Fatalf("%s = %q, %v; want it to name %s", LocationFile, b, err, c.Dir)
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	// A later command (a new Open of the same --dir) finds the same cluster.
	c2 := open()
	if c2.Dir != c.Dir {
		t.Fatalf("second Open found %s; want %s", c2.Dir, c.Dir)
	}
	if started, err := c2.Start(ctx); err != nil || !started {
		t.Fatalf("restart = %v, %v", started, err)
	}
	wantKept(t, ctx, c2, 7)

	killPostmaster(t, c2)
	c3 := open()
	if c3.Running(ctx) {
		t.Fatal("cluster reported running after kill -9 of its postmaster")
	}
	if started, err := c3.Start(ctx); err != nil || !started {
		t.Fatalf("start after kill -9 = %v, %v", started, err)
	}
	wantKept(t, ctx, c3, 7)

	// Nothing of the user's changed mode.
	if st, err := os.Stat(private); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("%s mode %v (%v); want 0700 untouched", private, st.Mode().Perm(), err)
	}

	if err := c3.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{c3.Dir, home} {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after Remove (%v)", d, err)
		}
	}
}

// TestUnprivilegedUserUnderPrivateParent runs the lifecycle as a laptop user
// would (nobody, through setpriv) with the data directory under that user's
// own 0700 folder: no relocation, the cluster runs as that user, and a kill -9
// of the postmaster keeps committed data.
func TestUnprivilegedUserUnderPrivateParent(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to become an unprivileged user; as such a user TestLifecycle already covers it")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		testpeer.Missing(t, "setpriv", "apt-get install util-linux")
	}
	if _, err := findBinaries(); err != nil {
		testpeer.Missing(t, "PostgreSQL", "apt-get install postgresql")
	}
	const uid, gid = 65534, 65534 // nobody, nogroup
	// The test binary sits in go's 0700 build folder: copy it where nobody
	// can run it.
	binDir := traversableTempDir(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(binDir, "pgserver.test")
	copyFile(t, self, bin, 0o755)
	// nobody's own private folder, as a laptop user's home would be.
	userHome := filepath.Join(traversableTempDir(t), "home")
	if err := os.Mkdir(userHome, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(userHome, uid, gid); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, setpriv, "--reuid="+strconv.Itoa(uid), "--regid="+strconv.Itoa(gid), "--clear-groups",
		bin, "-test.run=^TestChildLifecycle$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+filepath.Join(userHome, "p", "var", "pg"), "HOME="+userHome, "TMPDIR="+userHome)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	t.Logf("as nobody:\n%s", out.String())
	if err != nil {
		t.Fatalf("lifecycle as an unprivileged user: %v", err)
	}
	if !strings.Contains(out.String(), "--- PASS: TestChildLifecycle") {
		t.Fatal("the child test did not run")
	}
}

const childEnv = "VIGIA_PGSERVER_CHILD_DIR"

// TestChildLifecycle is run by TestUnprivilegedUserUnderPrivateParent as the
// unprivileged user; on its own it does nothing.
func TestChildLifecycle(t *testing.T) {
	home := os.Getenv(childEnv)
	if home == "" {
		t.Skip("run by TestUnprivilegedUserUnderPrivateParent")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Open(home, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Remove(context.Background())
	if c.Relocated() || c.cred != nil {
		t.Fatalf("as an unprivileged user the cluster must run as that user in %s (got Dir %s)", home, c.Dir)
	}
	if _, err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateDatabase(ctx, "vigia"); err != nil {
		t.Fatal(err)
	}
	execSQL(t, ctx, c, `CREATE TABLE kept (v int); INSERT INTO kept VALUES (9)`)
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	killPostmaster(t, c)
	c2, err := Open(home, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if started, err := c2.Start(ctx); err != nil || !started {
		t.Fatalf("start after kill -9 = %v, %v", started, err)
	}
	wantKept(t, ctx, c2, 9)
	if err := c2.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// traversableTempDir is a temporary folder the postgres user and nobody can
// enter (t.TempDir's parents are 0700).
func traversableTempDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "vigia-pgserver-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// killPostmaster sends SIGKILL to the postmaster named in postmaster.pid and
// waits until it is gone: a crash, not a shutdown.
func killPostmaster(t *testing.T, c *Cluster) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.Dir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil {
		t.Fatalf("postmaster.pid: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); syscall.Kill(pid, 0) == nil; {
		if time.Now().After(deadline) {
			t.Fatalf("postmaster %d still alive after SIGKILL", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func execSQL(t *testing.T, ctx context.Context, c *Cluster, q string) {
	t.Helper()
	db, err := sql.Open("postgres", c.URL("vigia"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func wantKept(t *testing.T, ctx context.Context, c *Cluster, want int) {
	t.Helper()
	db, err := sql.Open("postgres", c.URL("vigia"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.QueryRowContext(ctx, `SELECT v FROM kept`).Scan(&v); err != nil || v != want {
		t.Fatalf("committed row after restart: v=%d err=%v; want %d", v, err, want)
	}
}
