package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/vigia-noc/vigia/assets"
)

func init() {
	register(command{name: "import", summary: "import the inventory (customers, sites, devices, contracts) from YAML", run: runImport})
}

func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("import", "[flags] FILE", `
Imports an inventory file: customers with their sites, devices and contracts.
The file is checked strictly first (unknown keys, wrong values, dangling ids)
and every mistake is listed with its line; then it is written in one
transaction, all or nothing. Re-importing the same file changes nothing;
a site, device or contract that leaves the file is retired, not deleted.

Secrets (SNMP communities and passphrases, heartbeat tokens) may be written
as {file: PATH} or {env: NAME} instead of inline; they are never printed.

Exit status: 0 imported, 1 the file is invalid or the database refused it,
2 bad command line.`, stdout, stderr)
	var dbf dbFlags
	dbf.register(fs)
	dryRun := fs.Bool("dry-run", false, "check the file and show what would change, without changing anything")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("want exactly one inventory FILE (see --help)")
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	file := fs.Arg(0)
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	inv, err := assets.ParseFile(file, data, parseOptions())
	var invalid *assets.InvalidFileError
	if errors.As(err, &invalid) {
		for _, p := range invalid.Problems {
			fmt.Fprintln(stderr, p)
		}
		return &exitError{code: 1, err: fmt.Errorf("%d problem(s) in %s; nothing was imported", len(invalid.Problems), file)}
	}
	if err != nil {
		return err
	}
	conn, closeDB, err := dbf.open(ctx, log)
	if err != nil {
		return err
	}
	defer closeDB()
	sum, err := assets.NewStore(conn).Import(ctx, inv, time.Now(), *dryRun)
	if err != nil {
		return fmt.Errorf("%w; nothing was imported", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"dry_run": *dryRun, "summary": sum})
	}
	verb := "imported"
	if *dryRun {
		verb = "dry run, nothing changed; would import"
	}
	fmt.Fprintf(stdout, "%s %s:\n", verb, file)
	for _, what := range []string{"customer", "site", "device", "contract"} {
		fmt.Fprintf(stdout, "  %-9s %3d created, %3d updated, %3d unchanged, %3d retired\n", what+"s",
			sum.Created[what], sum.Updated[what], sum.Unchanged[what], sum.Retired[what])
	}
	return nil
}

// parseOptions is how the importer learns which SLA policies exist.
func parseOptions() assets.ParseOptions {
	return assets.ParseOptions{KnownPolicy: knownPolicy}
}
