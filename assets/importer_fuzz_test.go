package assets

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseFile feeds arbitrary bytes to the importer's parser: it must
// never panic, and must either accept a file or explain every problem with
// a line and a message. Seeds: the test corpus plus the example network.
//
//	go test -run '^$' -fuzz FuzzParseFile -fuzztime 60s ./assets
func FuzzParseFile(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	files = append(files, "../examples/inventory.yaml")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("customers: [{id: x, sites: [{devices: [{dicom: {port: -1}}]}]}]"))
	f.Add([]byte("customers:\n  - &a {id: a}\n  - *a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := ParseFile("fuzz.yaml", data, ParseOptions{KnownPolicy: knownTestPolicy})
		var invalid *InvalidFileError
		switch {
		case err == nil:
			if file == nil || len(file.Customers) == 0 {
				t.Fatalf("accepted a file with no customers: %q", data)
			}
			for _, c := range file.Customers {
				if !idRE.MatchString(c.ID) {
					t.Fatalf("accepted customer id %q", c.ID)
				}
			}
		case errors.As(err, &invalid):
			if len(invalid.Problems) == 0 {
				t.Fatal("InvalidFileError without problems")
			}
			for _, p := range invalid.Problems {
				if p.Line < 1 || strings.TrimSpace(p.Msg) == "" {
					t.Fatalf("problem without a line or message: %+v", p)
				}
			}
		default:
			t.Fatalf("unexpected error type %T: %v", err, err)
		}
	})
}
