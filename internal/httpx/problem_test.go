package httpx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lib/pq"

	"github.com/vigia-noc/vigia/internal/db"
)

// Sentinels declared the way the domain packages declare theirs: one told
// by its reason alone, one whose label begins every message.
var (
	errGone     = Kind(http.StatusNotFound, "not_found", "pkg: not found", "")
	errBad      = Kind(http.StatusBadRequest, "invalid_request", "pkg: invalid request", "")
	errBusyRule = Kind(http.StatusConflict, "conflict", "tickets: not possible in the ticket's current status", "not possible in the ticket's current status")
	errRefused  = Kind(http.StatusUnprocessableEntity, "refused", "tickets: refused", "refused")
)

func TestErrorsFail(t *testing.T) {
	unique := &pq.Error{Code: "23505", Detail: `Key (engineer_id)=(eng-x) already exists.`}
	for _, c := range []struct {
		name     string
		err      error
		what, id string
		status   int
		code     string
		message  string
		logged   string // a word the log line holds ("" for nothing logged)
	}{
		{"a reason told as it was written", fmt.Errorf("pkg: create visit: %w", errBad.Errorf("engineer %q is not active", "eng-x")),
			"visit", "", http.StatusBadRequest, "invalid_request", `engineer "eng-x" is not active`, ""},
		{"a label begins the message", fmt.Errorf("tickets: act: %w", errBusyRule.Errorf("cannot %s a %s ticket", "solve", "closed")),
			"ticket", "7", http.StatusConflict, "conflict", "not possible in the ticket's current status: cannot solve a closed ticket", ""},
		{"a bare sentinel is told by its label", errRefused, "ticket", "7", http.StatusUnprocessableEntity, "refused", "refused", ""},
		{"not found is told by the subject, whatever the reason", errGone.Errorf("ticket %d of another customer", 7),
			"ticket", "7", http.StatusNotFound, "not_found", `ticket "7" not found`, ""},
		{"not found without a subject is told by its reason", errGone.Errorf("customer %q", "c-1"),
			"", "", http.StatusNotFound, "not_found", `customer "c-1"`, ""},
		{"a refusal wrapping another tells the other's public text", errBad.Wrap(fmt.Errorf("tickets: lock 7: %w", errBusyRule.Errorf("ticket T-1 is closed"))),
			"ticket", "7", http.StatusBadRequest, "invalid_request", "not possible in the ticket's current status: ticket T-1 is closed", ""},
		{"a translated violation is told by the value at fault", errBusyRule.Wrap(&db.Violation{Kind: db.Unique, Message: `already exists: engineer "eng-x"`}),
			"", "", http.StatusConflict, "conflict", `not possible in the ticket's current status: already exists: engineer "eng-x"`, ""},
		{"an untranslated violation is told by the value at fault", fmt.Errorf("insert: %w", unique),
			"engineer", "eng-x", http.StatusConflict, "conflict", `already exists: engineer "eng-x"`, ""},
		{"a refusal because of a database error hides it", errBusyRule.Because(&pq.Error{Code: "23514", Message: "new row violates check constraint"}, "not enough %s for %d units", "P-1", 3),
			"", "", http.StatusConflict, "conflict", "not possible in the ticket's current status: not enough P-1 for 3 units", ""},
		{"a refusal wrapping an internal error shows only its label", errRefused.Wrap(errors.New("pq: relation \"tickets\" does not exist")),
			"", "", http.StatusUnprocessableEntity, "refused", "refused", ""},
		{"a refused field", fmt.Errorf("decode: %w", Invalid("note", "contains a NUL character")),
			"", "", http.StatusBadRequest, "invalid_field", "note: contains a NUL character", ""},
		{"a database that did not answer in time", fmt.Errorf("select: %w", context.DeadlineExceeded),
			"", "", http.StatusServiceUnavailable, "unavailable", "the database did not answer in time; try again", "database busy"},
		{"anything else is internal and logged, its text never shown", fmt.Errorf("select: %w", &pq.Error{Code: "42P01", Message: `relation "x" does not exist`}),
			"", "", http.StatusInternalServerError, "internal", "could not process the request", `relation`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs bytes.Buffer
			e := Errors{Log: slog.New(slog.NewTextHandler(&logs, nil)), API: "test API", Internal: "could not process the request"}
			rec := httptest.NewRecorder()
			e.Fail(rec, c.err, c.what, c.id)
			var body Error
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if rec.Code != c.status || body.Error != c.code || body.Message != c.message {
				t.Errorf("answer %d %s %q, want %d %s %q", rec.Code, body.Error, body.Message, c.status, c.code, c.message)
			}
			if strings.Contains(rec.Body.String(), "pq:") || strings.Contains(rec.Body.String(), "violates") {
				t.Errorf("the answer tells PostgreSQL's wording: %s", rec.Body)
			}
			if c.logged == "" && logs.Len() > 0 || c.logged != "" && !strings.Contains(logs.String(), c.logged) {
				t.Errorf("log %q, want it to hold %q", logs.String(), c.logged)
			}
		})
	}
}

// The error text of a refusal is what fmt.Errorf("%w: …", sentinel) gave,
// so logs and the console read as before, and errors.Is still finds the
// sentinel and any wrapped cause.
func TestProblemIdentity(t *testing.T) {
	cause := errors.New("the cause")
	for _, c := range []struct {
		name string
		err  error
		text string
		is   []error
	}{
		{"Errorf", errBad.Errorf("title is required"), "pkg: invalid request: title is required", []error{errBad}},
		{"Errorf with %w", errBad.Errorf("read: %w", cause), "pkg: invalid request: read: the cause", []error{errBad, cause}},
		{"Wrap", errBusyRule.Wrap(cause), "tickets: not possible in the ticket's current status: the cause", []error{errBusyRule, cause}},
		{"Because", errBusyRule.Because(cause, "not enough stock"), "tickets: not possible in the ticket's current status: not enough stock (the cause)", []error{errBusyRule, cause}},
		{"a refusal of a refusal", fmt.Errorf("outer: %w", errRefused.Wrap(errBad.Errorf("x"))), "outer: tickets: refused: pkg: invalid request: x", []error{errRefused, errBad}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.err.Error() != c.text {
				t.Errorf("Error() = %q, want %q", c.err.Error(), c.text)
			}
			for _, target := range c.is {
				if !errors.Is(c.err, target) {
					t.Errorf("errors.Is(%q, %q) = false", c.err, target)
				}
			}
			if errors.Is(c.err, errGone) {
				t.Errorf("errors.Is(%q, errGone) = true", c.err)
			}
		})
	}
}
