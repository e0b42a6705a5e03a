package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/maintenance"
)

func init() {
	register(command{name: "token", summary: "create or revoke API bearer tokens", run: runToken})
}

func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	usage := `
Subcommands:
  create --role noc|engineer|customer [--customer ID] [--engineer ID] [--name NAME]
         prints a new token once; only its hash is stored
  revoke ID
         disables a token by the id printed when it was created

Roles: noc sees everything; engineer sees devices and what is dispatched to
them; customer sees only that customer's sites, devices and tickets.`
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintf(stdout, "Usage: vigia token create|revoke [flags]\n%s\n", usage)
		if len(args) == 0 {
			return &exitError{code: 2}
		}
		return nil
	}
	switch args[0] {
	case "create":
		return runTokenCreate(ctx, args[1:], stdout, stderr)
	case "revoke":
		return runTokenRevoke(ctx, args[1:], stdout, stderr)
	default:
		return usageError("unknown subcommand %q (create or revoke)", args[0])
	}
}

func runTokenCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("token create", "--role ROLE [flags]", `
Creates an API bearer token and prints it on stdout, alone on a line (so
scripts can capture it). It is shown this once: only its SHA-256 is stored.
Use it as "Authorization: Bearer TOKEN".`, stdout, stderr)
	var dbf dbFlags
	dbf.register(fs)
	role := fs.String("role", "", "noc, engineer or customer (required)")
	customer := fs.String("customer", "", "customer id (required for --role customer)")
	engineer := fs.String("engineer", "", "engineer id (for --role engineer)")
	name := fs.String("name", "", "a label to recognise the token by (default: the role)")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if *role == "" {
		return usageError("--role is required (noc, engineer or customer)")
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	if *name == "" {
		*name = *role
	}
	log, _ := newLogger(stderr, "warn")
	conn, closeDB, err := dbf.open(ctx, log)
	if err != nil {
		return err
	}
	defer closeDB()
	// A hospital's portal seats are limited by its plan (seed 004).
	plan := maintenance.NewStore(conn, assets.NewStore(conn), maintenance.Options{})
	token, id, err := auth.NewTokens(conn, time.Now).WithSeats(plan).Create(ctx, *name, *role, *customer, *engineer)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	fmt.Fprintf(stderr, "token %d created (%s); it is shown only now:\n", id, *role)
	fmt.Fprintln(stdout, token)
	return nil
}

func runTokenRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	id, err := revokeCommand(ctx, "token revoke", "token", "Disables the token with the given id.", args, stdout, stderr,
		func(ctx context.Context, conn *sqlx.DB, id int64) error {
			return auth.NewTokens(conn, time.Now).Revoke(ctx, id)
		})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "token %d revoked\n", id)
	return nil
}

// revokeCommand runs a `revoke [flags] ID` subcommand: it parses the id,
// opens the database and calls revoke with it.
func revokeCommand(ctx context.Context, name, what, description string, args []string, stdout, stderr io.Writer,
	revoke func(ctx context.Context, conn *sqlx.DB, id int64) error) (int64, error) {
	fs := newFlagSet(name, "[flags] ID", description, stdout, stderr)
	var dbf dbFlags
	dbf.register(fs)
	if err := parseFlags(fs, args, stdout); err != nil {
		return 0, err
	}
	if fs.NArg() != 1 {
		return 0, usageError("want exactly one %s ID", what)
	}
	id, err := strconv.ParseInt(fs.Arg(0), 10, 64)
	if err != nil {
		return 0, usageError("%s ID %q is not a number", what, fs.Arg(0))
	}
	log, _ := newLogger(stderr, "warn")
	conn, closeDB, err := dbf.open(ctx, log)
	if err != nil {
		return 0, err
	}
	defer closeDB()
	return id, revoke(ctx, conn, id)
}
