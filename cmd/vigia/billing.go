package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"regexp"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/dispatch"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/maintenance"
)

func init() {
	register(command{name: "billing", summary: "billing reports: billable lines, hours consumed and hour banks", run: runBilling})
}

var monthPattern = regexp.MustCompile(`^\d{4}-(0[1-9]|1[0-2])$`)

func runBilling(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "report" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			io.WriteString(stdout, "Usage: vigia billing report --customer ID --month YYYY-MM [--format csv|json]\n")
			return nil
		}
		return usageError("usage: vigia billing report --customer ID --month YYYY-MM [--format csv|json]")
	}
	fs := newFlagSet("billing report", "--customer ID --month YYYY-MM [--format csv|json]", `
Lists a customer's billable lines of a month (in the customer's time zone):
per-event work, travel outside the engineer's home city and quoted parts,
with their total; the work done by how it was billed; and each hour bank's
period, hours consumed in the month and in the period, and hours remaining.`, stdout, stderr)
	dbf := dbFlags{}
	dbf.register(fs)
	customer := fs.String("customer", "", "customer id (required)")
	month := fs.String("month", "", "month, YYYY-MM (required)")
	format := fs.String("format", "csv", "csv or json")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	if err := parseFlags(fs, args[1:], stdout); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usageError("unexpected argument %q", fs.Arg(0))
	case *customer == "":
		return usageError("--customer is required")
	case !monthPattern.MatchString(*month):
		return usageError("--month must be YYYY-MM, not %q", *month)
	case *format != "csv" && *format != "json":
		return usageError("--format must be csv or json, not %q", *format)
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	conn, closeDB, err := dbf.open(ctx, log)
	if err != nil {
		return err
	}
	defer closeDB()
	inv := assets.NewStore(conn)
	store := dispatch.NewStore(conn, inv, maintenance.NewStore(conn, inv, maintenance.Options{}))
	rep, err := store.Report(ctx, auth.NOCActor("vigia billing"), *customer, *month)
	if errors.Is(err, dispatch.ErrNotFound) {
		return &exitError{code: 1, err: errors.New("no customer " + *customer)}
	}
	if err != nil {
		return err
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteCSV(stdout)
}
