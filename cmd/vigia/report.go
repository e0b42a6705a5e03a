package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/biomed"
	"github.com/vigia-noc/vigia/dispatch"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/probes"
	"github.com/vigia-noc/vigia/reports"
)

func init() {
	register(command{name: "report", summary: "contract reports: availability, monthly report, biomedical (report availability|monthly|biomedical)", run: runReport})
}

func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	usage := "Usage: vigia report availability --customer ID --from DATE --to DATE [--device ID] [--format json|csv|table]\n" +
		"       vigia report monthly --customer ID --month YYYY-MM [--format html|pdf|json|csv]\n" +
		"       vigia report biomedical --customer ID --from DATE --to DATE [--format csv|json]\n"
	if len(args) == 0 {
		io.WriteString(stderr, usage)
		return &exitError{code: 2}
	}
	switch args[0] {
	case "availability":
		return runReportAvailability(ctx, args[1:], stdout, stderr)
	case "monthly":
		return runReportMonthly(ctx, args[1:], stdout, stderr)
	case "biomedical":
		return runReportBiomedical(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "-help", "help":
		io.WriteString(stdout, usage)
		return nil
	}
	return usageError("unknown subcommand %q (want availability, monthly or biomedical)", args[0])
}

// reportFlags are the flags both report commands share.
type reportFlags struct {
	db                       dbFlags
	customer, file, logLevel *string
}

func registerReportFlags(fs *flag.FlagSet) *reportFlags {
	rf := &reportFlags{}
	rf.db.register(fs)
	rf.customer = fs.String("customer", "", "customer id (required)")
	rf.file = fs.String("policies", "", "extra policy file (YAML, presets format); its names win")
	rf.logLevel = fs.String("log-level", "warn", "debug, info, warn or error")
	return rf
}

// open connects and wires the reports to the owning packages' stores; it
// also reads the customer (exit status 1 when there is none).
func (rf *reportFlags) open(ctx context.Context, stderr io.Writer) (*reports.Reporter, assets.Customer, func(), error) {
	policies, err := loadPolicies(*rf.file)
	if err != nil {
		return nil, assets.Customer{}, nil, err
	}
	log, err := newLogger(stderr, *rf.logLevel)
	if err != nil {
		return nil, assets.Customer{}, nil, err
	}
	conn, closeDB, err := rf.db.open(ctx, log)
	if err != nil {
		return nil, assets.Customer{}, nil, err
	}
	inv := assets.NewStore(conn)
	cust, err := inv.Customer(ctx, assets.Scope{}, *rf.customer)
	if err != nil {
		closeDB()
		return nil, cust, nil, &exitError{code: 1, err: fmt.Errorf("no customer %s", *rf.customer)}
	}
	tickets := maintenance.NewStore(conn, inv, maintenance.Options{})
	field := dispatch.NewStore(conn, inv, tickets)
	return &reports.Reporter{Inventory: inv, History: probes.NewStore(conn), Tickets: tickets, Field: field,
		Biomedical: biomed.NewStore(conn, inv, tickets, field), Policies: policies, Now: time.Now}, cust, closeDB, nil
}

func runReportAvailability(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("report availability", "--customer ID --from DATE --to DATE [--device ID] [--format json|csv|table]", `
Availability of a customer's devices as their contracts count it, over a
period: covered time (the contract's calendar: 8x5 counts its business hours
without holidays, 24x7 all), downtime from the recorded transitions (down in
full, degraded times the policy's factor, unreachable only when the policy
says the site uplink is ours), time excluded (maintenance windows, outages
whose ticket was closed as caused by the customer) and availability (0–1),
per device, site and contract, with the contract's target and credit tier.
--from and --to are dates in the customer's zone (--to included) or RFC3339
instants (--to excluded). Disponibilidad según el contrato.`, stdout, stderr)
	rf := registerReportFlags(fs)
	from := fs.String("from", "", "first day, YYYY-MM-DD, or an RFC3339 instant (required)")
	to := fs.String("to", "", "last day (included), YYYY-MM-DD, or an RFC3339 instant (excluded) (required)")
	device := fs.String("device", "", "only this device")
	format := fs.String("format", "table", "json, csv or table")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usageError("unexpected argument %q", fs.Arg(0))
	case *rf.customer == "" || *from == "" || *to == "":
		return usageError("--customer, --from and --to are required")
	case *format != reports.FormatJSON && *format != reports.FormatCSV && *format != reports.FormatTable:
		return usageError("--format must be json, csv or table, not %q", *format)
	}
	r, cust, closeDB, err := rf.open(ctx, stderr)
	if err != nil {
		return err
	}
	defer closeDB()
	f, t, err := reports.ParsePeriod(*from, *to, cust.Location())
	if err != nil {
		return usageError("--%v", err)
	}
	rep, err := r.Availability(ctx, reports.AvailabilityQuery{CustomerID: cust.ID, From: f, To: t, DeviceID: *device})
	if err != nil {
		return reportError(err)
	}
	return writeAvailability(stdout, rep, *format, cust.Location())
}

func writeAvailability(w io.Writer, rep reports.Availability, format string, loc *time.Location) error {
	switch format {
	case reports.FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	case reports.FormatCSV:
		cw := csv.NewWriter(w)
		cw.Write([]string{"device_id", "site_id", "contract_id", "covered_seconds", "downtime_seconds", "excluded_seconds", "availability"})
		for _, d := range rep.Devices {
			cw.Write([]string{d.DeviceID, d.SiteID, d.ContractID, reports.Seconds(d.CoveredSeconds), reports.Seconds(d.DowntimeSeconds),
				reports.Seconds(d.ExcludedSeconds), strconv.FormatFloat(d.Availability, 'f', -1, 64)})
		}
		cw.Flush()
		return cw.Error()
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "period:\t%s – %s\t\n\n", rep.From.In(loc).Format(time.RFC3339), rep.To.In(loc).Format(time.RFC3339))
	fmt.Fprintln(tw, "DEVICE\tSITE\tCONTRACT\tCOVERED h\tDOWNTIME s\tEXCLUDED s\tAVAILABILITY\t")
	for _, d := range rep.Devices {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", d.DeviceID, d.SiteID, d.ContractID, reports.Hours(d.CoveredSeconds),
			reports.Seconds(d.DowntimeSeconds), reports.Seconds(d.ExcludedSeconds), reports.Percent(d.Availability))
	}
	fmt.Fprintln(tw, "\t\t\t\t\t\t\t")
	fmt.Fprintln(tw, "CONTRACT\tPOLICY\tDEVICES\tCOVERED h\tDOWNTIME s\tAVAILABILITY\tTARGET / CREDIT\t")
	for _, g := range rep.Contracts {
		tier := "-"
		if g.Target != nil {
			tier = reports.Percent(*g.Target)
			if *g.TargetMet {
				tier += " met"
			} else {
				tier += " NOT met"
			}
		}
		if g.CreditPercent != nil {
			tier += fmt.Sprintf(", credit %s %%", strconv.FormatFloat(*g.CreditPercent, 'f', -1, 64))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t\n", g.ID, g.Policy, g.Devices, reports.Hours(g.CoveredSeconds),
			reports.Seconds(g.DowntimeSeconds), reports.Percent(g.Availability), tier)
	}
	return tw.Flush()
}

func runReportMonthly(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("report monthly", "--customer ID --month YYYY-MM [--format html|pdf|json|csv]", `
The monthly report a hospital receives, in its language: availability per
device and site, tickets by severity with response and resolution met or
breached and by how much, SLA pauses by reason with their hours, visits and
parts, hour-bank consumption and balance, billable lines. The PDF is printed
by headless Chromium. Informe mensual del cliente.`, stdout, stderr)
	rf := registerReportFlags(fs)
	month := fs.String("month", "", "month, YYYY-MM, in the customer's zone (required)")
	format := fs.String("format", "html", "html, pdf, json or csv")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usageError("unexpected argument %q", fs.Arg(0))
	case *rf.customer == "":
		return usageError("--customer is required")
	case !monthPattern.MatchString(*month):
		return usageError("--month must be YYYY-MM, not %q", *month)
	case !strings.Contains(" html pdf json csv ", " "+*format+" "):
		return usageError("--format must be html, pdf, json or csv, not %q", *format)
	}
	r, cust, closeDB, err := rf.open(ctx, stderr)
	if err != nil {
		return err
	}
	defer closeDB()
	rep, err := r.Monthly(ctx, cust.ID, *month)
	if err != nil {
		return reportError(err)
	}
	return rep.Write(ctx, stdout, *format)
}

// reportError maps a report's error to the exit status: 1 for something
// that is not there, 2 (usage) for a bad request.
func reportError(err error) error {
	switch {
	case errors.Is(err, reports.ErrNotFound):
		return &exitError{code: 1, err: err}
	case errors.Is(err, reports.ErrInvalid):
		return usageError("%v", err)
	}
	return err
}
