package httpx

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/vigia-noc/vigia/internal/db"
)

// Problem is an error a client may be told about: its kind gives the
// status and the stable code of the answer, and its public text names the
// rule broken — never a table, a constraint or PostgreSQL's wording.
//
// A domain package declares its sentinels with Kind (dispatch.ErrInvalid,
// maintenance.ErrConflict…) and derives each refusal from one with Errorf
// or Wrap, so errors.Is(err, dispatch.ErrInvalid) holds and the answer's
// message is the refusal's own text, not a slice of err.Error().
type Problem struct {
	status int
	code   string
	text   string // Error(): for logs and for errors wrapping it
	public string // what the answer says
	parent *Problem
	cause  error
}

// Publisher is an error carrying text written for people (a Problem, a
// db.Violation): wrapped in a Problem, that text is what the answer says.
type Publisher interface{ PublicMessage() string }

// Kind declares a sentinel answered with status and code. text is its
// error text ("dispatch: invalid request"); label, when not empty, begins
// the message of each of its refusals and is the whole message of the bare
// sentinel ("invalid request: title is required").
func Kind(status int, code, text, label string) *Problem {
	return &Problem{status: status, code: code, text: text, public: label}
}

func (p *Problem) Error() string { return p.text }

// HTTPStatus is the status the answer carries.
func (p *Problem) HTTPStatus() int { return p.status }

// Code is the stable machine code of the answer (not_found, conflict…).
func (p *Problem) Code() string { return p.code }

// PublicMessage is what the answer tells people.
func (p *Problem) PublicMessage() string { return p.public }

// Unwrap is the sentinel the problem derives from and its cause.
func (p *Problem) Unwrap() []error {
	var errs []error
	if p.parent != nil {
		errs = append(errs, p.parent)
	}
	if p.cause != nil {
		errs = append(errs, p.cause)
	}
	return errs
}

// Errorf is a refusal of p's kind told by the formatted text (fmt.Errorf's
// verbs, %w included, so a wrapped cause still answers errors.Is).
func (p *Problem) Errorf(format string, a ...any) error {
	msg := fmt.Errorf(format, a...)
	return p.child(msg.Error(), msg.Error(), msg)
}

// Wrap is a refusal of p's kind because of err: people read err's public
// text (a Problem's, a db.Violation's), or only p's label when err has
// none, so an internal error's text never reaches them.
func (p *Problem) Wrap(err error) error {
	return p.child(err.Error(), publicText(err), err)
}

// Because is a refusal of p's kind told by the formatted text, caused by
// err: err's text is kept for the logs but never shown.
func (p *Problem) Because(err error, format string, a ...any) error {
	msg := fmt.Sprintf(format, a...)
	return p.child(fmt.Sprintf("%s (%v)", msg, err), msg, err)
}

func (p *Problem) child(text, public string, cause error) *Problem {
	return &Problem{status: p.status, code: p.code, text: joinText(p.text, text), public: joinText(p.public, public), parent: p, cause: cause}
}

func joinText(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + ": " + b
}

func publicText(err error) string {
	var pub Publisher
	if errors.As(err, &pub) {
		return pub.PublicMessage()
	}
	return ""
}

// Errors answers the errors of one API's handlers alike.
type Errors struct {
	Log      *slog.Logger // nil: slog.Default()
	API      string       // names the API in the logs ("dispatch API")
	Internal string       // what a 500 says ("could not process the request")
}

// Fail answers err of a request about what (id):
//   - a Problem: its status, code and public text; a not-found one is told
//     as NotFound(what, id) when what is given, so a row outside the
//     caller's scope reads exactly like one that does not exist;
//   - a refused field or body (FieldError, SyntaxError): as Refuse does;
//   - a broken constraint nobody translated: 409 or 400, told by the value
//     at fault;
//   - a database that did not answer in time: 503, logged as a warning;
//   - anything else: 500 with e.Internal, logged; its text (pq's
//     included) never leaves.
func (e Errors) Fail(w http.ResponseWriter, err error, what, id string) {
	var p *Problem
	v := violation(err)
	switch {
	case errors.As(err, &p):
		if p.status == http.StatusNotFound && what != "" {
			NotFound(w, what, id)
			return
		}
		JSON(w, p.status, Error{Error: p.code, Message: p.public})
	case Refuse(w, err):
	case v != nil:
		if v.Kind == db.Unique {
			Fail(w, http.StatusConflict, "conflict", "%s", v.Message)
		} else {
			Fail(w, http.StatusBadRequest, "invalid_request", "%s", v.Message)
		}
	case db.Busy(err):
		e.log().Warn(e.API+": database busy", "err", err)
		Fail(w, http.StatusServiceUnavailable, "unavailable", "the database did not answer in time; try again")
	default:
		e.log().Error(e.API, "err", err)
		Fail(w, http.StatusInternalServerError, "internal", "%s", e.Internal)
	}
}

// violation is the broken constraint err tells of, translated or not yet.
func violation(err error) *db.Violation {
	var v *db.Violation
	if errors.As(err, &v) {
		return v
	}
	v, _ = db.AsViolation(err)
	return v
}

func (e Errors) log() *slog.Logger {
	if e.Log == nil {
		return slog.Default()
	}
	return e.Log
}
