package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/maintenance"
)

func init() {
	register(command{name: "user", summary: "create web console users or set their passwords", run: runUser})
}

// userStdin is where passwords are read from; tests replace it.
var userStdin io.Reader = os.Stdin

func runUser(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	usage := `
Subcommands:
  create --role noc|engineer|customer --username U [--customer ID] [--engineer ID] [--language es|en] [--time-zone ZONE]
         creates a web console user
  password --username U
         sets a user's password and ends its sessions
  time-zone --username U --zone ZONE
         sets the time zone the user reads times in (IANA name; "" for the default)

The password is read from VIGIA_USER_PASSWORD or, when that is unset, from
the first line of standard input; never from a flag, which would leave it
in the shell history and the process list. A customer's users take seats of
its plan (seed 004: desk-standard 2, desk-premium 5), as its API tokens do.`
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintf(stdout, "Usage: vigia user create|password [flags]\n%s\n", usage)
		if len(args) == 0 {
			return &exitError{code: 2}
		}
		return nil
	}
	switch args[0] {
	case "create":
		return runUserCreate(ctx, args[1:], stdout, stderr)
	case "password":
		return runUserPassword(ctx, args[1:], stdout, stderr)
	case "time-zone":
		return runUserTimeZone(ctx, args[1:], stdout, stderr)
	default:
		return usageError("unknown subcommand %q (create, password or time-zone)", args[0])
	}
}

// readPassword takes VIGIA_USER_PASSWORD, or the first line of stdin.
func readPassword() (string, error) {
	if pw, ok := os.LookupEnv("VIGIA_USER_PASSWORD"); ok && pw != "" {
		return pw, nil
	}
	line, err := bufio.NewReader(io.LimitReader(userStdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password from stdin: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", usageError("no password: set VIGIA_USER_PASSWORD or write it on standard input")
	}
	return pw, nil
}

func runUserCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("user create", "--role ROLE --username U [flags]", `
Creates a web console user. The password comes from VIGIA_USER_PASSWORD or
the first line of standard input (at least 10 characters); only its
argon2id hash is stored.`, stdout, stderr)
	var dbf dbFlags
	dbf.register(fs)
	role := fs.String("role", "", "noc, engineer or customer (required)")
	username := fs.String("username", "", "login name: lower-case letters, digits and . _ @ - (required)")
	customer := fs.String("customer", "", "customer id (required for --role customer)")
	engineer := fs.String("engineer", "", "engineer id whose visits the user sees (required for --role engineer)")
	language := fs.String("language", "es", "console language: es or en")
	timeZone := fs.String("time-zone", "", "IANA time zone the user reads times in, e.g. America/Bogota (default: the customer's zone, or the server's for staff)")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q (the password is never a flag: use VIGIA_USER_PASSWORD or stdin)", fs.Arg(0))
	}
	if *role == "" || *username == "" {
		return usageError("--role and --username are required")
	}
	password, err := readPassword()
	if err != nil {
		return err
	}
	log, _ := newLogger(stderr, "warn")
	conn, closeDB, err := dbf.open(ctx, log)
	if err != nil {
		return err
	}
	defer closeDB()
	inv := assets.NewStore(conn)
	tickets := maintenance.NewStore(conn, inv, maintenance.Options{})
	u, err := auth.NewUsers(conn, tickets, inv).Create(ctx, auth.UserInput{Username: *username, Password: password, Role: *role,
		CustomerID: *customer, EngineerID: *engineer, Language: *language, TimeZone: *timeZone}, time.Now())
	switch {
	case errors.Is(err, auth.ErrInvalidUser), errors.Is(err, auth.ErrUserExists), errors.Is(err, auth.ErrNoSeats):
		return &exitError{code: 2, err: err}
	case err != nil:
		return err
	}
	scope := ""
	switch {
	case u.CustomerID != "":
		scope = " of customer " + u.CustomerID
	case u.EngineerID != "":
		scope = " bound to engineer " + u.EngineerID
	}
	fmt.Fprintf(stdout, "user %s created (%s%s); log in at /console/\n", u.Username, u.Role, scope)
	return nil
}

func runUserPassword(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("user password", "--username U [flags]", `
Sets a console user's password (from VIGIA_USER_PASSWORD or the first line
of standard input) and logs the user out everywhere.`, stdout, stderr)
	var dbf dbFlags
	dbf.register(fs)
	username := fs.String("username", "", "login name (required)")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q (the password is never a flag: use VIGIA_USER_PASSWORD or stdin)", fs.Arg(0))
	}
	if *username == "" {
		return usageError("--username is required")
	}
	password, err := readPassword()
	if err != nil {
		return err
	}
	log, _ := newLogger(stderr, "warn")
	conn, closeDB, err := dbf.open(ctx, log)
	if err != nil {
		return err
	}
	defer closeDB()
	if err := auth.NewUsers(conn, nil, nil).SetPassword(ctx, *username, password); err != nil {
		if errors.Is(err, auth.ErrInvalidUser) {
			return &exitError{code: 2, err: err}
		}
		return err
	}
	fmt.Fprintf(stdout, "password of %s set; its sessions have ended\n", *username)
	return nil
}

func runUserTimeZone(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("user time-zone", "--username U --zone ZONE [flags]", `
Sets the time zone a console user reads every time in: an IANA name such as
America/Bogota, or "" for the default (the customer's zone for a customer's
users, the server's for staff). The user can also change it in the console.`, stdout, stderr)
	var dbf dbFlags
	dbf.register(fs)
	username := fs.String("username", "", "login name (required)")
	zone := fs.String("zone", "", "IANA time zone, e.g. America/Bogota; empty for the default")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	if *username == "" {
		return usageError("--username is required")
	}
	if err := auth.CheckTimeZone(*zone); err != nil {
		return &exitError{code: 2, err: err}
	}
	log, _ := newLogger(stderr, "warn")
	conn, closeDB, err := dbf.open(ctx, log)
	if err != nil {
		return err
	}
	defer closeDB()
	if err := auth.NewUsers(conn, nil, nil).SetTimeZone(ctx, *username, *zone); err != nil {
		if errors.Is(err, auth.ErrInvalidUser) {
			return &exitError{code: 2, err: err}
		}
		return err
	}
	shown := *zone
	if shown == "" {
		shown = "the default"
	}
	fmt.Fprintf(stdout, "%s reads times in %s\n", *username, shown)
	return nil
}
