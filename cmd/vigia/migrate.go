package main

import (
	"context"
	"fmt"
	"io"
)

func init() {
	register(command{name: "migrate", summary: "apply pending database migrations and exit", run: runMigrate})
}

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", "[flags]", `
Applies every pending migration to the database and exits. `+"`vigia serve`"+` does the
same on start; a PostgreSQL advisory lock keeps instances that start together
from racing.`, stdout, stderr)
	var dbf dbFlags
	dbf.register(fs)
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	_, closeDB, err := dbf.open(ctx, log)
	if err != nil {
		return err
	}
	closeDB()
	fmt.Fprintln(stdout, "database is up to date")
	return nil
}
