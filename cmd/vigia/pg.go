package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/vigia-noc/vigia/internal/pgserver"
)

func init() {
	register(command{name: "pg", summary: "start, stop or locate the private PostgreSQL cluster", run: runPG})
}

func runPG(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("pg", "start|stop|status|url|remove [flags]", `
Manages the private PostgreSQL cluster Vigía uses when DATABASE_URL is unset.
It lives in --dir (default VIGIA_DATA_DIR/pg), listens only on a unix socket
inside its directory, and runs as the "postgres" user when you are root.

As root, when the postgres user cannot enter --dir (a checkout in a home
directory or a mktemp folder, mode 0700), the cluster is kept instead under
/var/lib/vigia/clusters/ in a folder named after --dir, and --dir holds a
file CLUSTER_LOCATION naming it; every command finds it through that file.
The modes of your folders are never changed.

  start   create the cluster if needed and start it (prints its URL)
  stop    stop it
  status  say whether it runs and where (exit 0 running, 3 stopped)
  url     print the URL of database "vigia" on it
  remove  stop it and delete its data (also a relocated cluster): for
          throwaway clusters such as make test's`, stdout, stderr)
	dir := fs.String("dir", filepath.Join(envOr("VIGIA_DATA_DIR", "var"), "pg"), "data directory of the cluster")
	database := fs.String("database", "vigia", "database whose URL start and url print (created by start)")
	fast := fs.Bool("fast", false, "no fsync: for throwaway test clusters only")
	// The action may come first, as the usage line shows, or after the flags.
	var action string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		action, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if action == "" && fs.NArg() == 1 {
		action = fs.Arg(0)
	} else if fs.NArg() > 0 || action == "" {
		return usageError("want one action: start, stop, status, url or remove")
	}
	c, err := pgserver.Open(*dir, pgserver.Options{Fast: *fast})
	if err != nil {
		return err
	}
	switch action {
	case "start":
		if _, err := c.Start(ctx); err != nil {
			return err
		}
		if err := c.CreateDatabase(ctx, *database); err != nil {
			return err
		}
		fmt.Fprintln(stdout, c.URL(*database))
	case "stop":
		return c.Stop(ctx)
	case "status":
		where := c.Dir
		if c.Relocated() {
			where = fmt.Sprintf("%s, kept in %s", c.Home, c.Dir)
		}
		if !c.Running(ctx) {
			fmt.Fprintf(stdout, "stopped (%s)\n", where)
			return &exitError{code: 3}
		}
		fmt.Fprintf(stdout, "running (%s)\n", where)
	case "url":
		fmt.Fprintln(stdout, c.URL(*database))
	case "remove":
		return c.Remove(ctx)
	default:
		return usageError("unknown action %q: want start, stop, status, url or remove", action)
	}
	return nil
}
