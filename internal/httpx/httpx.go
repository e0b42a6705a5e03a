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
	// Field names the body field, path value or query parameter refused.
	Field string `json:"field,omitempty"`
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

// Decode reads a JSON body strictly into v and validates it (see
// DecodeBytes): a refused body is answered here with 400, 413 or 415. It
// reports whether v was filled.
func Decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		Fail(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "send application/json, not %.100q", ct)
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		Fail(w, http.StatusRequestEntityTooLarge, "body_too_large", "the body is larger than %d bytes", MaxBody)
		return false
	case err != nil:
		Fail(w, http.StatusBadRequest, "invalid_json", "could not read the body")
		return false
	}
	if err := DecodeBytes(body, v); err != nil {
		Refuse(w, err)
		return false
	}
	return true
}
