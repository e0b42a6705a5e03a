package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on what a request may carry, in bytes of UTF-8. A struct field
// decoded by Decode takes MaxText unless its tag says `max:"N"` (tags
// repeat these values: MaxCents is "10000000000000", MaxCount "100000").
// Every limit of a value that can be part of a key, hence quoted whole by
// a PostgreSQL error, is well under the 30 000 bytes at which lib/pq
// misreads such an error (see internal/db/guard.go).
const (
	MaxID    = 100  // text ids: customers, sites, devices, engineers, warehouses, users
	MaxName  = 200  // names, titles, part and case numbers, e-mail addresses, reasons
	MaxText  = 8000 // free text: descriptions, notes, comments
	MaxQuery = 200  // a query parameter's value
	// MaxCents bounds money (10¹³ cents: 100 000 000 000 in any currency),
	// so that sums of many amounts stay far from int64's end.
	MaxCents = 10_000_000_000_000
	// MaxCount bounds quantities and hours.
	MaxCount = 100_000
)

// FieldError is a request refused because of one field (a body field, a
// path id or a query parameter): 400 with the field named.
type FieldError struct {
	Field   string
	Problem string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// Invalid returns a FieldError.
func Invalid(field, format string, a ...any) *FieldError {
	// The name may come from the request itself (an unknown key).
	if field == "" {
		field = `""`
	}
	return &FieldError{Field: brief(field), Problem: fmt.Sprintf(format, a...)}
}

// SyntaxError is a body that is not the JSON asked for.
type SyntaxError struct{ Problem string }

func (e *SyntaxError) Error() string { return e.Problem }

// Refuse answers err, an error of this package's decoding or validation,
// with its status; it reports false (and writes nothing) for other errors.
func Refuse(w http.ResponseWriter, err error) bool {
	var fe *FieldError
	var se *SyntaxError
	switch {
	case errors.As(err, &fe):
		JSON(w, http.StatusBadRequest, Error{Error: "invalid_field", Message: fe.Error(), Field: fe.Field})
	case errors.As(err, &se):
		JSON(w, http.StatusBadRequest, Error{Error: "invalid_json", Message: se.Problem})
	default:
		return false
	}
	return true
}

// CheckString refuses a value that is not valid UTF-8, holds a NUL or is
// longer than max bytes: PostgreSQL stores none of them.
func CheckString(field, s string, max int) error {
	switch {
	case len(s) > max:
		return Invalid(field, "longer than %d bytes", max)
	case !utf8.ValidString(s):
		return Invalid(field, "not valid UTF-8")
	case strings.IndexByte(s, 0) >= 0:
		return Invalid(field, "contains a NUL character")
	}
	return nil
}

// CheckInt refuses a value outside [lo, hi].
func CheckInt(field string, n, lo, hi int64) error {
	if n < lo || n > hi {
		return Invalid(field, "must be an integer from %d to %d", lo, hi)
	}
	return nil
}

// DecodeBytes decodes body strictly into v and validates it: unknown
// fields, trailing data, numbers of the wrong type or range, strings that
// are not valid UTF-8 or hold NUL, and values beyond the fields' limits
// (tags `max:"N"` and `min:"N"`, see Validate) are errors.
func DecodeBytes(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return &SyntaxError{"empty body: send a JSON object"}
	}
	if !utf8.Valid(body) {
		// encoding/json would quietly turn the bytes into U+FFFD.
		return Invalid(pathAt(body, invalidUTF8At(body)), "not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		return &SyntaxError{"unexpected data after the JSON value"}
	}
	if err != nil {
		return decodeError(body, v, err)
	}
	return Validate(v)
}

func decodeError(body []byte, v any, err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if inner := failingField(body, v); inner != "" {
			field = inner // with map keys and list indexes
		}
		if field == "" {
			return &SyntaxError{fmt.Sprintf("want %s, not %s", describe(typeErr.Type), brief(typeErr.Value))}
		}
		return Invalid(field, "want %s, not %s", describe(typeErr.Type), brief(typeErr.Value))
	case errors.As(err, &syntaxErr):
		return &SyntaxError{fmt.Sprintf("invalid JSON at byte %d: %v", syntaxErr.Offset, strings.TrimPrefix(err.Error(), "json: "))}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &SyntaxError{"invalid JSON: the body ends too early"}
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return Invalid(strings.Trim(name, `"`), "unknown field")
	}
	// A value's own decoder (a time, an enum) failed: find which field by
	// decoding the fields one by one.
	msg := brief(strings.TrimPrefix(err.Error(), "json: "))
	if field := failingField(body, v); field != "" {
		return Invalid(field, "%s", msg)
	}
	return &SyntaxError{"invalid JSON: " + msg}
}

// brief keeps a decoder's message short: it may quote the whole value.
func brief(msg string) string {
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	return strings.ToValidUTF8(strings.ReplaceAll(msg, "\x00", `\u0000`), "?")
}

func describe(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return fmt.Sprintf("an integer from %d to %d", minOf(t), int64(math.MaxInt64)>>(64-t.Bits()))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}

func minOf(t reflect.Type) int64 { return -(int64(math.MaxInt64) >> (64 - t.Bits())) - 1 }

// failingField finds the innermost member of body that fails to decode
// alone into its part of v's type ("alerts[0].startsAt"), or "".
func failingField(body []byte, v any) string {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		return ""
	}
	path, _ := failingPath(body, t.Elem(), "")
	return path
}

// failingPath reports whether raw fails to decode into a value of type t,
// and the path of the innermost part that does.
func failingPath(raw []byte, t reflect.Type, path string) (string, bool) {
	if json.Unmarshal(raw, reflect.New(t).Interface()) == nil {
		return "", false
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		var members map[string]json.RawMessage
		if t == timeType || json.Unmarshal(raw, &members) != nil {
			break
		}
		for k, m := range members {
			f, ok := fieldByJSONName(t, k)
			if !ok {
				continue
			}
			if p, bad := failingPath(m, f.Type, join(path, k)); bad {
				return p, true
			}
		}
	case reflect.Slice, reflect.Array:
		var elems []json.RawMessage
		if json.Unmarshal(raw, &elems) != nil {
			break
		}
		for i, e := range elems {
			if p, bad := failingPath(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); bad {
				return p, true
			}
		}
	case reflect.Map:
		var members map[string]json.RawMessage
		if json.Unmarshal(raw, &members) != nil {
			break
		}
		for k, m := range members {
			if p, bad := failingPath(m, t.Elem(), join(path, k)); bad {
				return p, true
			}
		}
	}
	return path, true
}

// fieldByJSONName finds the field encoding/json would fill from key.
func fieldByJSONName(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		if f.IsExported() && name != "-" && strings.EqualFold(name, key) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// pathAt names the field of the JSON document whose token covers byte off
// ("engineers[1]", "signature.name"), or "body" when it cannot tell.
func pathAt(body []byte, off int) string {
	type frame struct {
		object  bool
		key     string
		index   int
		wantKey bool
	}
	var stack []*frame
	name := func(withKey string) string {
		var b strings.Builder
		for _, f := range stack {
			switch {
			case !f.object:
				fmt.Fprintf(&b, "[%d]", f.index)
			case !f.wantKey:
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(f.key)
			}
		}
		if withKey != "" {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(withKey)
		}
		if b.Len() == 0 {
			return "body"
		}
		return b.String()
	}
	afterValue := func() {
		if len(stack) == 0 {
			return
		}
		if top := stack[len(stack)-1]; top.object {
			top.wantKey = true
		} else {
			top.index++
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := dec.Token()
		if err != nil {
			return name("")
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if int(dec.InputOffset()) > off {
			if s, isKey := tok.(string); isKey && top != nil && top.object && top.wantKey {
				return name(s)
			}
			return name("")
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, &frame{object: true, wantKey: true})
			case '[':
				stack = append(stack, &frame{})
			default:
				stack = stack[:len(stack)-1]
				afterValue()
			}
		case string:
			if top != nil && top.object && top.wantKey {
				top.key, top.wantKey = t, false
				continue
			}
			afterValue()
		default:
			afterValue()
		}
	}
}

var timeType = reflect.TypeFor[time.Time]()

// Validate checks every string and integer reachable from v (struct
// fields by their JSON names, list elements, map keys and values): strings
// as CheckString with the field's `max:"N"` (default MaxText), integers
// within the field's `min:"N"` (default 0) and `max:"N"` (default the
// largest value of PostgreSQL's column for the Go type: int is integer,
// int64 is bigint), lists of at most `items:"N"` elements (default 1000).
func Validate(v any) error {
	return walk("", reflect.ValueOf(v), "")
}

func walk(path string, v reflect.Value, tag reflect.StructTag) error {
	if !v.IsValid() {
		return nil
	}
	field := path
	if field == "" {
		field = "body"
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return walk(path, v.Elem(), tag)
	case reflect.String:
		return CheckString(field, v.String(), int(limit(tag, "max", MaxText)))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		hi := int64(math.MaxInt64)
		if v.Kind() != reflect.Int64 {
			hi = math.MaxInt32
		}
		return CheckInt(field, v.Int(), limit(tag, "min", 0), limit(tag, "max", hi))
	case reflect.Float32, reflect.Float64:
		if f := v.Float(); math.IsNaN(f) || math.IsInf(f, 0) || f < float64(limit(tag, "min", 0)) {
			return Invalid(field, "must be a number from %d", limit(tag, "min", 0))
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return nil // raw bytes, not text
		}
		if max := limit(tag, "items", 1000); v.Len() > int(max) {
			return Invalid(field, "more than %d items", max)
		}
		for i := range v.Len() {
			if err := walk(fmt.Sprintf("%s[%d]", path, i), v.Index(i), tag); err != nil {
				return err
			}
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			k := fmt.Sprint(iter.Key().Interface())
			if err := CheckString(field+" key", k, MaxName); err != nil {
				return err
			}
			if err := walk(join(path, k), iter.Value(), tag); err != nil {
				return err
			}
		}
	case reflect.Struct:
		if v.Type() == timeType {
			return nil
		}
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			sub := join(path, name)
			if f.Anonymous && f.Tag.Get("json") == "" {
				sub = path
			}
			if err := walk(sub, v.Field(i), f.Tag); err != nil {
				return err
			}
		}
	}
	return nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func limit(tag reflect.StructTag, key string, def int64) int64 {
	s, ok := tag.Lookup(key)
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		panic(fmt.Sprintf("httpx: bad %s tag %q", key, s))
	}
	return n
}
