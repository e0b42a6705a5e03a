package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/biomed"
	"github.com/vigia-noc/vigia/dispatch"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/reports"
)

func init() {
	register(command{name: "biomed", summary: "biomedical maintenance programmes and calibration (biomed import|plan)", run: runBiomed})
	register(command{name: "alerts", summary: "safety alerts and recalls matched to the installed base (alerts import)", run: runAlerts})
}

// newBiomedStore wires the biomedical service to the stores it calls.
func newBiomedStore(conn *sqlx.DB) *biomed.Store {
	inv := assets.NewStore(conn)
	tickets := maintenance.NewStore(conn, inv, maintenance.Options{})
	return biomed.NewStore(conn, inv, tickets, dispatch.NewStore(conn, inv, tickets))
}

// openBiomed connects (applying migrations), logging at level, and wires
// the biomedical store; closeDB undoes the connection.
func openBiomed(ctx context.Context, dbf *dbFlags, level string, stderr io.Writer) (*sqlx.DB, *biomed.Store, func(), error) {
	log, err := newLogger(stderr, level)
	if err != nil {
		return nil, nil, nil, err
	}
	conn, closeDB, err := dbf.open(ctx, log)
	if err != nil {
		return nil, nil, nil, err
	}
	return conn, newBiomedStore(conn), closeDB, nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func runBiomed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	usage := "Usage: vigia biomed import [flags] FILE\n       vigia biomed plan [flags]\n"
	if len(args) == 0 {
		io.WriteString(stderr, usage)
		return &exitError{code: 2}
	}
	switch args[0] {
	case "import", "plan":
	case "-h", "--help", "-help", "help":
		io.WriteString(stdout, usage)
		return nil
	default:
		return usageError("unknown subcommand %q (want import or plan)", args[0])
	}
	sub := args[0]
	fs := newFlagSet("biomed "+sub, map[string]string{"import": "[flags] FILE", "plan": "[flags]"}[sub], map[string]string{
		"import": `
Imports biomedical maintenance programmes and calibration flags (YAML; see
README "Biomedical vigilance"): per manufacturer and model, or per device
(which replaces its model's programme), tasks due every N months, on a
calendar rule ("first monday of each quarter") or by usage (tube hours, exam
counts), with duration, skills and checklist. Then plans: work orders for
the next 90 days on each customer's calendar (weekends and holidays move to
the next working day), and the tickets (Sev 4, with a maintenance window
over the due day) of those whose lead time has begun. Re-importing the same
file changes nothing. Programas de mantenimiento biomédico.

Exit status: 0 imported, 1 invalid file or refused, 2 bad command line.`,
		"plan": `
Plans now what the sweeper of vigia serve plans every hour: work orders for
the next 90 days, tickets of those whose lead time has begun, and a ticket
for every calibration that fell overdue.`}[sub], stdout, stderr)
	var dbf dbFlags
	dbf.register(fs)
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	if err := parseFlags(fs, args[1:], stdout); err != nil {
		return err
	}
	var file *biomed.File
	switch {
	case sub == "import" && fs.NArg() != 1:
		return usageError("want exactly one programme FILE (see --help)")
	case sub == "plan" && fs.NArg() != 0:
		return usageError("unexpected argument %q", fs.Arg(0))
	case sub == "import":
		data, err := os.ReadFile(fs.Arg(0))
		if err != nil {
			return err
		}
		if file, err = biomed.ParseFile(data); err != nil {
			return &exitError{code: 1, err: fmt.Errorf("%w\nnothing was imported", err)}
		}
	}
	_, store, closeDB, err := openBiomed(ctx, &dbf, *logLevel, stderr)
	if err != nil {
		return err
	}
	defer closeDB()
	if sub == "plan" {
		res, err := store.Plan(ctx, time.Now())
		if err != nil {
			return err
		}
		return printJSON(stdout, res)
	}
	sum, err := store.Import(ctx, file, time.Now())
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	return printJSON(stdout, sum)
}

func runAlerts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "import" && args[0] != "-h" && args[0] != "--help" && args[0] != "help") {
		io.WriteString(stderr, "Usage: vigia alerts import [flags] FILE\n")
		return &exitError{code: 2}
	}
	fs := newFlagSet("alerts import", "[flags] FILE", `
Imports safety alerts and recalls (INVIMA, DIGEMID, COFEPRIS, FDA, the
manufacturer) as a JSON array or CSV with the columns
source,reference,date,manufacturer,models,serials,patient_risk,action
(several models or serials separated by ";", a serial range as FROM..TO),
matches them against the installed base (manufacturer and models compared
case-insensitively; a range matches serials of its prefix whose number lies
within) and opens one ticket per affected device, Sev 2 when the alert says
patients are at risk, else Sev 3, with the alert linked; the hospital sees
them in its portal. Re-importing the same alert changes nothing.
Alertas de seguridad y retiros de producto.

Exit status: 0 imported, 1 invalid file, 2 bad command line.`, stdout, stderr)
	var dbf dbFlags
	dbf.register(fs)
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	if args[0] != "import" {
		return parseFlags(fs, []string{"--help"}, stdout)
	}
	if err := parseFlags(fs, args[1:], stdout); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("want exactly one alerts FILE (see --help)")
	}
	data, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	alerts, err := biomed.ParseAlerts(data)
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("%w\nnothing was imported", err)}
	}
	_, store, closeDB, err := openBiomed(ctx, &dbf, *logLevel, stderr)
	if err != nil {
		return err
	}
	defer closeDB()
	sum, err := store.ImportAlerts(ctx, alerts, time.Now())
	if err != nil {
		return err
	}
	return printJSON(stdout, sum)
}

func runReportBiomedical(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("report biomedical", "--customer ID --from DATE --to DATE [--format csv|json]", `
The biomedical service of a customer over a period (dates in its zone, --to
excluded): preventive compliance (work orders due in the period done on
time, late or missed), the electrical safety test records with their
failures, the calibration state at the period's end, the safety alerts that
affected it and their closure. Informe de vigilancia biomédica.`, stdout, stderr)
	var dbf dbFlags
	dbf.register(fs)
	customer := fs.String("customer", "", "customer id (required)")
	from := fs.String("from", "", "first day, YYYY-MM-DD (required)")
	to := fs.String("to", "", "day after the last, YYYY-MM-DD (required)")
	format := fs.String("format", "csv", "csv or json")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	f, errF := time.Parse(time.DateOnly, *from)
	t, errT := time.Parse(time.DateOnly, *to)
	switch {
	case fs.NArg() > 0:
		return usageError("unexpected argument %q", fs.Arg(0))
	case *customer == "" || errF != nil || errT != nil || !t.After(f):
		return usageError("--customer, --from and --to (dates, --to after --from) are required")
	case *format != reports.FormatCSV && *format != reports.FormatJSON:
		return usageError("--format must be csv or json, not %q", *format)
	}
	conn, store, closeDB, err := openBiomed(ctx, &dbf, *logLevel, stderr)
	if err != nil {
		return err
	}
	defer closeDB()
	cust, err := assets.NewStore(conn).Customer(ctx, assets.Scope{}, *customer)
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("no customer %s", *customer)}
	}
	loc := cust.Location()
	sm, err := store.Summary(ctx, cust.ID, time.Date(f.Year(), f.Month(), f.Day(), 0, 0, 0, 0, loc),
		time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc), time.Now())
	if err != nil {
		return err
	}
	if *format == reports.FormatJSON {
		return printJSON(stdout, sm)
	}
	return sm.WriteCSV(stdout)
}
