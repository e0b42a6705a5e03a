package httpx

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Query is a request's query parameters, each checked as a string
// (CheckString with MaxQuery) and known to the route.
type Query map[string]string

// ParseQuery reads r's query: a parameter the route does not take, one
// given twice, a malformed query string or a value that is not valid
// UTF-8, holds NUL or exceeds MaxQuery bytes is refused, the same way on
// every list.
func ParseQuery(r *http.Request, allowed ...string) (Query, error) {
	vals, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, Invalid("query", "malformed query string")
	}
	q := Query{}
	for k, vs := range vals {
		if err := CheckString("query parameter", k, MaxQuery); err != nil {
			return nil, err
		}
		if !slices.Contains(allowed, k) {
			if len(allowed) == 0 {
				return nil, Invalid(k, "unknown parameter (this list takes none)")
			}
			return nil, Invalid(k, "unknown parameter (allowed: %s)", strings.Join(allowed, ", "))
		}
		if len(vs) > 1 {
			return nil, Invalid(k, "given more than once")
		}
		if err := CheckString(k, vs[0], MaxQuery); err != nil {
			return nil, err
		}
		q[k] = vs[0]
	}
	return q, nil
}

// ReadQuery is ParseQuery for a handler: a refused query is answered (400,
// naming the parameter) and ok is false.
func ReadQuery(w http.ResponseWriter, r *http.Request, allowed ...string) (q Query, ok bool) {
	q, err := ParseQuery(r, allowed...)
	if err != nil {
		Refuse(w, err)
		return nil, false
	}
	return q, true
}

// Int reads an integer parameter within [lo, hi]; absent is 0.
func (q Query) Int(name string, lo, hi int64) (int64, error) {
	v, ok := q[name]
	if !ok || v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, Invalid(name, "must be an integer from %d to %d", lo, hi)
	}
	return n, nil
}

// ID reads a positive integer id parameter; absent is 0.
func (q Query) ID(name string) (int64, error) {
	n, err := q.Int(name, 1, 1<<63-1)
	if err != nil {
		return 0, Invalid(name, "must be a positive integer id")
	}
	return n, nil
}

// Bool reads true/false (or 1/0); absent is false.
func (q Query) Bool(name string) (bool, error) {
	switch q[name] {
	case "", "false", "0":
		return false, nil
	case "true", "1":
		return true, nil
	}
	return false, Invalid(name, "must be true or false")
}

// Time reads an RFC 3339 instant; absent is nil.
func (q Query) Time(name string) (*time.Time, error) {
	v := q[name]
	if v == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return nil, Invalid(name, "must be an RFC 3339 instant")
	}
	return &t, nil
}

// TextID checks a text id (customer, site, device, engineer…) given in
// a path or a query: valid UTF-8, no NUL, at most MaxID bytes.
func TextID(field, id string) error { return CheckString(field, id, MaxID) }

// PathID reads the path value name as a positive int64; anything else
// names no row and is answered 404 as what.
func PathID(w http.ResponseWriter, r *http.Request, name, what string) (int64, bool) {
	v := r.PathValue(name)
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		if CheckString(name, v, MaxID) != nil {
			v = "(invalid)"
		}
		NotFound(w, what, v)
		return 0, false
	}
	return id, true
}

// Guard refuses, before any route sees it, a request whose path or query
// cannot name anything Vigía stores: a path (after unescaping) that is not
// valid UTF-8, holds NUL or has a segment longer than MaxID bytes, a
// malformed query string, or a query key or value that is not valid UTF-8,
// holds NUL or exceeds maxValue bytes. API paths are answered in JSON.
func Guard(maxValue int, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := checkTarget(r, maxValue)
		if err == nil {
			next.ServeHTTP(w, r)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/api/") {
			Refuse(w, err)
			return
		}
		http.Error(w, "400 "+err.Error(), http.StatusBadRequest)
	})
}

func checkTarget(r *http.Request, maxValue int) error {
	if err := CheckString("path", r.URL.Path, 4096); err != nil {
		return err
	}
	for seg := range strings.SplitSeq(r.URL.Path, "/") {
		if len(seg) > MaxID {
			return Invalid("path", "a segment is longer than %d bytes", MaxID)
		}
	}
	vals, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return Invalid("query", "malformed query string")
	}
	for k, vs := range vals {
		if err := CheckString("query parameter", k, MaxQuery); err != nil {
			return err
		}
		for _, v := range vs {
			if err := CheckString(k, v, maxValue); err != nil {
				return err
			}
		}
	}
	return nil
}

// CheckForm checks every key and value of a submitted form as CheckString
// does, values with limits[key] bytes or MaxText.
func CheckForm(form url.Values, limits map[string]int) error {
	for k, vs := range form {
		if err := CheckString("form field", k, MaxName); err != nil {
			return err
		}
		max, ok := limits[k]
		if !ok {
			max = MaxText
		}
		for _, v := range vs {
			if err := CheckString(k, v, max); err != nil {
				return err
			}
		}
	}
	return nil
}
