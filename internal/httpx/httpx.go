// Package httpx holds the small JSON conventions every Vigía API handler
// shares: how answers and errors are written and how bodies are read.
package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// MaxBody caps request bodies; anything larger is refused with 413.
const MaxBody = 1 << 20

// Error is the body of every error answer.
type Error struct {
	Error   string `json:"error"`   // a stable machine code: not_found, invalid_json…
	Message string `json:"message"` // what went wrong, for people
}

// JSON writes v with status.
func JSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// Fail writes an error answer.
func Fail(w http.ResponseWriter, status int, code, format string, a ...any) {
	JSON(w, status, Error{Error: code, Message: fmt.Sprintf(format, a...)})
}

// NotFound is the answer for rows that do not exist and for rows outside the
// caller's scope alike, so one customer cannot probe for another's ids.
func NotFound(w http.ResponseWriter, what, id string) {
	Fail(w, http.StatusNotFound, "not_found", "%s %q not found", what, id)
}

// Decode reads a JSON body strictly into v: unknown fields, trailing data
// and bodies over MaxBody are errors, answered here with 400 or 413. It
// reports whether v was filled.
func Decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		Fail(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "send application/json, not %s", ct)
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("unexpected data after the JSON value")
	}
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return true
	case errors.As(err, &tooBig):
		Fail(w, http.StatusRequestEntityTooLarge, "body_too_large", "the body is larger than %d bytes", MaxBody)
	case errors.Is(err, io.EOF):
		Fail(w, http.StatusBadRequest, "invalid_json", "empty body: send a JSON object")
	default:
		Fail(w, http.StatusBadRequest, "invalid_json", "invalid JSON: %v", err)
	}
	return false
}
