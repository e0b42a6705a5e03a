package httpx

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// sample is shaped like the API's inputs: ids, text, money, lists, nested
// objects, maps and times.
type sample struct {
	Ticket    int64    `json:"ticket"`
	Engineer  string   `json:"engineer" max:"100"`
	Note      string   `json:"note"`
	Hours     int      `json:"hours" max:"100000"`
	Price     int64    `json:"price_cents" max:"10000000000000"`
	Devices   []string `json:"devices" max:"100"`
	Signature *struct {
		Name string `json:"name" max:"200"`
	} `json:"signature"`
	Labels map[string]string `json:"labels"`
	Parts  []struct {
		Quantity int `json:"quantity" max:"100000"`
	} `json:"parts"`
	At     time.Time `json:"at"`
	Active *bool     `json:"active"`
}

func TestDecodeBytes(t *testing.T) {
	for _, c := range []struct {
		name, body string
		field      string // "" for a syntax error, "-" for accepted
	}{
		{"valid", `{"ticket":1,"engineer":"eng-laura","note":"Diagnóstico","hours":2,"devices":["a"],"signature":{"name":"Dra"},"labels":{"a":"b"},"parts":[{"quantity":1}],"at":"2026-11-23T15:00:00Z"}`, "-"},
		{"NUL", `{"note":"a\u0000b"}`, "note"},
		{"NUL in a list", `{"devices":["a","b\u0000"]}`, "devices[1]"},
		{"NUL in a map value", `{"labels":{"x":"\u0000"}}`, "labels.x"},
		{"NUL in a map key", `{"labels":{"\u0000":"x"}}`, "labels key"},
		{"invalid UTF-8", "{\"note\":\"a\xffb\"}", "note"},
		{"invalid UTF-8 nested", "{\"signature\":{\"name\":\"\xc3\x28\"}}", "signature.name"},
		{"invalid UTF-8 in a key", "{\"no\xfft\":1}", "no\ufffdt"},
		{"NUL in an unknown key", `{"a\u0000b":1}`, `a\x00b`},
		{"invalid UTF-8 in a list", "{\"devices\":[\"a\",\"\xff\"]}", "devices[1]"},
		{"over the field's limit", `{"engineer":"` + strings.Repeat("e", 101) + `"}`, "engineer"},
		{"over the default limit", `{"note":"` + strings.Repeat("n", MaxText+1) + `"}`, "note"},
		{"beyond int64", `{"ticket":9223372036854775808}`, "ticket"},
		{"int beyond integer", `{"hours":2147483648}`, "hours"},
		{"over the field's maximum", `{"hours":100001}`, "hours"},
		{"money over its bound", `{"price_cents":9223372036854775807}`, "price_cents"},
		{"negative", `{"ticket":-1}`, "ticket"},
		{"negative nested", `{"parts":[{"quantity":1},{"quantity":-5}]}`, "parts[1].quantity"},
		{"fraction", `{"ticket":1.5}`, "ticket"},
		{"wrong type", `{"engineer":12}`, "engineer"},
		{"wrong type in a map", `{"labels":{"device":12}}`, "labels.device"},
		{"bad time", `{"at":"yesterday"}`, "at"},
		{"bad time in a list element", `{"parts":[{"quantity":"x"}]}`, "parts[0].quantity"},
		{"unknown field", `{"colour":"blue"}`, "colour"},
		{"trailing data", `{} {}`, ""},
		{"not JSON", `not json`, ""},
		{"empty", ` `, ""},
		{"truncated", `{"note":"x`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var v sample
			err := DecodeBytes([]byte(c.body), &v)
			var fe *FieldError
			var se *SyntaxError
			switch {
			case c.field == "-":
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
			case c.field == "":
				if !errors.As(err, &se) {
					t.Fatalf("got %T %v, want a SyntaxError", err, err)
				}
			case !errors.As(err, &fe):
				t.Fatalf("got %T %v, want a FieldError on %q", err, err, c.field)
			case fe.Field != c.field:
				t.Fatalf("field %q (%v), want %q", fe.Field, err, c.field)
			}
		})
	}
}

func TestParseQuery(t *testing.T) {
	for _, c := range []struct {
		raw   string
		field string // "" when accepted
	}{
		{"ticket=5&state=done", ""},
		{"bogus=1", "bogus"},
		{"ticket=5&ticket=6", "ticket"},
		{"state=%00", "state"},
		{"state=%ff", "state"},
		{"state=" + strings.Repeat("s", MaxQuery+1), "state"},
		{"%zz", "query"},
	} {
		t.Run(c.raw[:min(len(c.raw), 30)], func(t *testing.T) {
			r := httptest.NewRequest("GET", "/x?"+c.raw, nil)
			_, err := ParseQuery(r, "ticket", "state")
			var fe *FieldError
			switch {
			case c.field == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.field != "" && (!errors.As(err, &fe) || fe.Field != c.field):
				t.Fatalf("got %v, want a FieldError on %q", err, c.field)
			}
		})
	}
	q := Query{"ticket": "9223372036854775808", "n": "7"}
	if _, err := q.ID("ticket"); err == nil {
		t.Error("an id beyond int64 was accepted")
	}
	if n, err := q.Int("n", 1, 10); err != nil || n != 7 {
		t.Errorf("Int = %d, %v", n, err)
	}
}

// checkRefusal holds for every refusal: a known type, a message that is
// text a person can read and short, whatever the input quoted.
func checkRefusal(t *testing.T, err error) {
	t.Helper()
	var fe *FieldError
	var se *SyntaxError
	if !errors.As(err, &fe) && !errors.As(err, &se) {
		t.Fatalf("refusal of type %T: %v", err, err)
	}
	if fe != nil && fe.Field == "" {
		t.Fatalf("a field error without a field: %v", err)
	}
	msg := err.Error()
	if !utf8.ValidString(msg) || strings.ContainsRune(msg, 0) || len(msg) > 1000 {
		t.Fatalf("message not fit for people (%d bytes): %q", len(msg), msg[:min(len(msg), 200)])
	}
}

// FuzzDecodeBytes: any body is either refused with a field-naming or
// syntax error, or decoded into values PostgreSQL can store. Seeds in
// testdata/fuzz/FuzzDecodeBytes run with every `go test`.
//
//	go test -run '^$' -fuzz FuzzDecodeBytes -fuzztime 60s ./internal/httpx
func FuzzDecodeBytes(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		var v sample
		err := DecodeBytes(body, &v)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		if !utf8.Valid(body) {
			t.Fatalf("accepted invalid UTF-8: %q", body)
		}
		if err := Validate(&v); err != nil {
			t.Fatalf("accepted %q, which Validate refuses: %v", body, err)
		}
	})
}

// FuzzParseQuery: any query string is refused with a field error or gives
// values that are valid UTF-8, without NUL, within MaxQuery.
func FuzzParseQuery(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw string) {
		r := httptest.NewRequest("GET", "/x", nil)
		r.URL.RawQuery = raw
		q, err := ParseQuery(r, "ticket", "state")
		if err != nil {
			checkRefusal(t, err)
			return
		}
		for k, v := range q {
			if k != "ticket" && k != "state" {
				t.Fatalf("accepted unknown parameter %q", k)
			}
			if CheckString(k, v, MaxQuery) != nil {
				t.Fatalf("accepted %q=%q", k, v)
			}
		}
	})
}
