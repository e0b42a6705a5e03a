package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vigia-noc/vigia/internal/pgtest"
)

// runCLI runs vigia in-process and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestImportReportsEveryMistakeAndChangesNothing(t *testing.T) {
	url := pgtest.URL(t)
	code, out, errs := runCLI(t, "import", "--database-url", url, "../../examples/inventory.yaml")
	if code != 0 {
		t.Fatalf("import example: exit %d\n%s%s", code, out, errs)
	}
	counts := func() string {
		var b strings.Builder
		code, out, errs := runCLI(t, "import", "--dry-run", "--json", "--database-url", url, "../../examples/inventory.yaml")
		if code != 0 {
			t.Fatalf("dry run: %d %s", code, errs)
		}
		b.WriteString(out)
		return b.String()
	}
	before := counts()

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	src, _ := os.ReadFile("../../examples/inventory.yaml")
	// Three different mistakes: an unknown key, a bad enum value, a dangling reference.
	text := string(src)
	text = strings.Replace(text, "            model: SOMATOM go.Up\n", "            model: SOMATOM go.Up\n            colour: grey\n", 1)
	text = strings.Replace(text, "            kind: biomedical\n", "            kind: toaster\n", 1)
	text = strings.Replace(text, "hsr-norte-dx, hsr-chia-nm]", "hsr-norte-dx, hsr-chia-nm, hsr-ghost]", 1)
	if err := os.WriteFile(bad, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs = runCLI(t, "import", "--database-url", url, bad)
	if code != 1 {
		t.Fatalf("bad import: exit %d, want 1\n%s", code, errs)
	}
	lineOf := func(needle string) string {
		i := strings.Index(text, needle)
		return strconv.Itoa(strings.Count(text[:i], "\n") + 1)
	}
	for _, want := range []string{
		bad + ":" + lineOf("colour: grey") + ": colour: unknown key",
		bad + ":" + lineOf("kind: toaster") + ": customers[0].sites[0].devices[9].kind: unknown device kind \"toaster\"",
		bad + ":" + lineOf("hsr-norte-gw, hsr-norte-ct") + ": customers[0].contracts[0].devices[14]: \"hsr-ghost\" is not a device of this customer",
		"3 problem(s)",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if after := counts(); after != before {
		t.Errorf("a rejected import changed the database:\nbefore %s\nafter %s", before, after)
	}
}

func TestHelp(t *testing.T) {
	code, out, _ := runCLI(t, "--help")
	if code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for name := range commands {
		if !strings.Contains(out, "  "+name+" ") {
			t.Errorf("--help does not list %s", name)
		}
		if code, out, errs := runCLI(t, name, "--help"); code != 0 || !strings.Contains(out, "Usage: vigia "+name) {
			t.Errorf("vigia %s --help: exit %d\n%s%s", name, code, out, errs)
		}
	}
	if code, _, _ := runCLI(t, "no-such-command"); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
}
