package assets

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func knownTestPolicy(name string) bool {
	return slices.Contains([]string{"imaging-8x5", "it-support-pe"}, name)
}

// TestParseInvalid checks every testdata/invalid-*.yaml against the exact
// problems listed in its .err file: all mistakes, each with line and key.
func TestParseInvalid(t *testing.T) {
	files, _ := filepath.Glob("testdata/invalid-*.yaml")
	if len(files) < 4 {
		t.Fatalf("expected the invalid-*.yaml corpus, found %d files", len(files))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(strings.TrimSuffix(file, ".yaml") + ".err")
			if err != nil {
				t.Fatal(err)
			}
			f, err := ParseFile(file, data, ParseOptions{KnownPolicy: knownTestPolicy})
			var invalid *InvalidFileError
			if !errors.As(err, &invalid) {
				t.Fatalf("ParseFile = %v, %v; want *InvalidFileError", f, err)
			}
			var got []string
			for _, p := range invalid.Problems {
				got = append(got, p.String())
			}
			if g, w := strings.Join(got, "\n"), strings.TrimSpace(string(want)); g != w {
				t.Errorf("problems:\n%s\n\nwant:\n%s", g, w)
			}
		})
	}
}

func TestParseValidResolvesSecrets(t *testing.T) {
	t.Setenv("ACME_SNMP_AUTH", "auth-passphrase-secret")
	data, err := os.ReadFile("testdata/valid-minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ParseFile("valid-minimal.yaml", data, ParseOptions{KnownPolicy: knownTestPolicy})
	if err != nil {
		t.Fatal(err)
	}
	snmp := f.Customers[0].Sites[0].Devices[1].SNMP
	if snmp.AuthPassphrase.Reveal() != "auth-passphrase-secret" || snmp.PrivPassphrase.Reveal() != "priv-passphrase-secret" {
		t.Errorf("secrets not resolved from env and file")
	}
	// Secrets never print, whatever verb or encoder is used.
	for _, s := range []string{snmp.AuthPassphrase.String(), fmtAll(snmp.AuthPassphrase), fmtAll(*snmp)} {
		if strings.Contains(s, "auth-passphrase-secret") {
			t.Errorf("secret leaked in %q", s)
		}
	}
}

func TestParseUnknownPolicyWithoutCatalogueIsAccepted(t *testing.T) {
	t.Setenv("ACME_SNMP_AUTH", "auth-passphrase-secret")
	data, _ := os.ReadFile("testdata/valid-minimal.yaml")
	data = []byte(strings.Replace(string(data), "imaging-8x5", "custom-policy", 1))
	if _, err := ParseFile("x.yaml", data, ParseOptions{}); err != nil {
		t.Fatalf("with no policy catalogue any name is accepted: %v", err)
	}
	if _, err := ParseFile("x.yaml", data, ParseOptions{KnownPolicy: knownTestPolicy}); err == nil {
		t.Fatal("unknown policy accepted with a catalogue")
	}
}
