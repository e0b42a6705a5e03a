package ownership

import (
	"go/build"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/vigia-noc/vigia/"

// knownCrossings lists "package table" pairs still reaching into a table they
// do not own. It only ever shrinks; an entry that no longer crosses fails the
// test so the list cannot rot.
var knownCrossings = map[string]bool{}

func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("module root not found from %s: %v", dir, err)
	}
	return dir
}

// outside reports whether a folder is bench code or a test-support package,
// which seed and inspect tables directly on purpose.
func outside(rel string) bool {
	return rel == "bench" || strings.HasPrefix(rel, "bench/") || strings.HasSuffix(filepath.Base(rel), "test")
}

// goFiles calls fn with the folder (relative, slash-separated) of every Go
// file of the module, test files included, outside hidden folders,
// testdata, var and node_modules.
func goFiles(t *testing.T, fn func(dir, path string)) {
	t.Helper()
	base := root(t)
	err := filepath.WalkDir(base, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != base && (strings.HasPrefix(name, ".") || name == "testdata" || name == "var" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") {
			rel, _ := filepath.Rel(base, filepath.Dir(path))
			fn(filepath.ToSlash(rel), path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// sources maps each project package (relative folder) to its non-test Go files.
func sources(t *testing.T) map[string][]string {
	t.Helper()
	pkgs := map[string][]string{}
	goFiles(t, func(dir, path string) {
		if !strings.HasSuffix(path, "_test.go") && !outside(dir) {
			pkgs[dir] = append(pkgs[dir], path)
		}
	})
	return pkgs
}

var createTable = regexp.MustCompile(`(?i)CREATE TABLE (?:IF NOT EXISTS )?([a-z_0-9]+)`)

// SQL keywords are written in capitals in this code base, which keeps English
// prose in comments ("from devices") out of the scan.
var tableRef = regexp.MustCompile(`\b(?:INSERT INTO|UPDATE|DELETE FROM|JOIN|FROM|TRUNCATE)\s+([a-z_0-9]+)\b`)

// builtTable is SQL whose table name is spliced in at run time ("FROM " +
// table), which the scan cannot see: it is refused outright.
var builtTable = regexp.MustCompile("\\b(?:INSERT INTO|UPDATE|DELETE FROM|JOIN|FROM|TRUNCATE)\\s*[`\"]\\s*\\+")

func TestEveryTableHasAnOwner(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(root(t), "internal/db/migrations/*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations found: %v", err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range createTable.FindAllStringSubmatch(string(b), -1) {
			seen[m[1]] = true
			if _, ok := Owners[m[1]]; !ok {
				t.Errorf("table %s (%s) has no owner in ownership.Owners", m[1], filepath.Base(f))
			}
		}
	}
	for table := range Owners {
		if !seen[table] {
			t.Errorf("ownership.Owners names %s, which no migration creates", table)
		}
	}
}

// crossings returns "package table" for every table named in SQL outside its
// owner, with one file:line per pair.
func crossings(t *testing.T, pkgs map[string][]string) map[string]string {
	t.Helper()
	base := root(t)
	found := map[string]string{}
	for pkg, files := range pkgs {
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for i, line := range strings.Split(string(b), "\n") {
				if builtTable.MatchString(line) {
					rel, _ := filepath.Rel(base, f)
					found[pkg+" (table name built at run time)"] = rel + ":" + strconv.Itoa(i+1)
				}
				for _, m := range tableRef.FindAllStringSubmatch(line, -1) {
					owner, ok := Owners[m[1]]
					if !ok || owner == pkg {
						continue
					}
					key := pkg + " " + m[1]
					if _, dup := found[key]; !dup {
						rel, _ := filepath.Rel(base, f)
						found[key] = rel + ":" + strconv.Itoa(i+1)
					}
				}
			}
		}
	}
	return found
}

func TestTablesAreNamedOnlyByTheirOwner(t *testing.T) {
	found := crossings(t, sources(t))
	var keys []string
	for k := range found {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if knownCrossings[k] {
			continue
		}
		pkg, table, _ := strings.Cut(k, " ")
		if strings.HasPrefix(table, "(") {
			t.Errorf("%s: package %s builds a table name into SQL at run time; name the table in the SQL text so ownership can be checked", found[k], pkg)
			continue
		}
		t.Errorf("%s: package %s names table %s, owned by %s; call the owner's exported functions instead",
			found[k], pkg, table, Owners[table])
	}
	for k := range knownCrossings {
		if _, ok := found[k]; !ok {
			t.Errorf("knownCrossings lists %q, which no longer crosses: remove it", k)
		}
	}
}

// A planted cross-package INSERT must be caught: the scanner is run over a
// fake package whose only file writes another package's table.
func TestPlantedCrossingIsCaught(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "planted.go")
	src := "package planted\n\nconst q = `INSERT INTO outbox (event_key) VALUES ($1)`\n"
	if err := os.WriteFile(f, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	found := crossings(t, map[string][]string{"dispatch": {f}})
	if _, ok := found["dispatch outbox"]; !ok {
		t.Fatalf("a planted INSERT INTO outbox in dispatch was not reported: %v", found)
	}
	// A table name spliced into the SQL is caught too, even by its owner.
	built := filepath.Join(dir, "built.go")
	src = "package planted\n\nfunc q(table string) string { return `SELECT 1 FROM ` + table }\n"
	if err := os.WriteFile(built, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	found = crossings(t, map[string][]string{"assets": {built}})
	if _, ok := found["assets (table name built at run time)"]; !ok {
		t.Fatalf("SQL with a spliced table name was not reported: %v", found)
	}
}

func layerOf() map[string]int {
	m := map[string]int{}
	for i, layer := range Layers {
		for _, p := range layer {
			m[p] = i
		}
	}
	return m
}

func TestImportsFollowTheFlow(t *testing.T) {
	layers := layerOf()
	base := root(t)
	for pkg := range sources(t) {
		if _, err := os.Stat(filepath.Join(base, pkg)); err != nil {
			continue
		}
		mine, ok := layers[pkg]
		if !ok {
			t.Errorf("package %s has no place in ownership.Layers", pkg)
			continue
		}
		bp, err := build.ImportDir(filepath.Join(base, pkg), 0)
		if err != nil {
			if _, none := err.(*build.NoGoError); none {
				continue
			}
			t.Fatalf("%s: %v", pkg, err)
		}
		for _, imp := range bp.Imports {
			dep, ok := strings.CutPrefix(imp, module)
			if !ok || outside(dep) {
				continue
			}
			theirs, ok := layers[dep]
			if !ok {
				t.Errorf("%s imports %s, which has no place in ownership.Layers", pkg, dep)
				continue
			}
			if theirs >= mine && !(theirs == 0 && mine == 0) {
				t.Errorf("%s (layer %d) imports %s (layer %d): imports go only up the flow", pkg, mine, dep, theirs)
			}
		}
	}
}

// README's owners table must say what Owners says: each row's tables are
// exactly the tables Owners gives that package.
func TestReadmeOwnersTable(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "<!-- owners:")
	if !ok {
		t.Fatal("README.md has no owners table (<!-- owners: … -->)")
	}
	want := map[string][]string{}
	for table, pkg := range Owners {
		want[pkg] = append(want[pkg], table)
	}
	got := map[string][]string{}
	for _, line := range strings.Split(rest, "\n")[1:] {
		if !strings.HasPrefix(line, "|") {
			if len(got) > 0 {
				break
			}
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 4 || strings.HasPrefix(strings.TrimSpace(cells[1]), "---") || strings.TrimSpace(cells[1]) == "owner" {
			continue
		}
		pkg, _, _ := strings.Cut(strings.Trim(strings.TrimSpace(cells[1]), "`"), "`")
		for _, table := range strings.Split(cells[2], ",") {
			got[pkg] = append(got[pkg], strings.TrimSpace(table))
		}
	}
	for pkg, tables := range want {
		sort.Strings(tables)
		have := got[pkg]
		sort.Strings(have)
		if strings.Join(tables, ",") != strings.Join(have, ",") {
			t.Errorf("README owners table, row %s: tables %v, want %v", pkg, have, tables)
		}
	}
	for pkg := range got {
		if _, ok := want[pkg]; !ok {
			t.Errorf("README owners table has a row for %s, which owns no table", pkg)
		}
	}
}

// README's folder table must name every package folder of the tree (bench/
// aside) and nothing that is not one.
func TestReadmeFolderTable(t *testing.T) {
	base := root(t)
	b, err := os.ReadFile(filepath.Join(base, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "| folder | what lives there |")
	if !ok {
		t.Fatal("README.md has no folder table (| folder | what lives there |)")
	}
	listed := map[string]bool{}
	backticked := regexp.MustCompile("`([^`]+)`")
	for _, line := range strings.Split(rest, "\n")[1:] {
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(line, "|")
		if len(cells) < 3 {
			continue
		}
		for _, m := range backticked.FindAllStringSubmatch(cells[1], -1) {
			listed[m[1]] = true
		}
	}
	present := map[string]bool{}
	goFiles(t, func(dir, _ string) {
		if dir != "bench" && !strings.HasPrefix(dir, "bench/") {
			present[dir] = true
		}
	})
	for dir := range present {
		if !listed[dir] {
			t.Errorf("README's folder table does not name package folder %s", dir)
		}
	}
	for dir := range listed {
		if !present[dir] {
			t.Errorf("README's folder table names %s, which holds no Go package", dir)
		}
	}
}
