package db

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/lib/pq"
)

// Kinds of constraint violation.
const (
	Unique     = "unique"      // a value already taken (23505), or an overlapping booking (23P01)
	ForeignKey = "foreign_key" // a reference to nothing, or a row still referenced (23503)
	Check      = "check"       // a value outside its column's domain (23514), or a required one missing (23502)
)

// Violation is a broken constraint told as people read it: which value
// conflicts or which reference is unknown, never the table or constraint
// name, nor PostgreSQL's own wording.
type Violation struct {
	Kind    string
	Message string
}

func (v *Violation) Error() string { return v.Message }

// PublicMessage is the violation told for people (see httpx.Publisher): a
// Problem wrapping it answers with this text.
func (v *Violation) PublicMessage() string { return v.Message }

// keyDetail is PostgreSQL's "Key (a, b)=(x, y) …" detail.
var keyDetail = regexp.MustCompile(`^Key \((.*)\)=\((.*)\) (already exists|is not present in table|is still referenced from table|conflicts with existing key)`)

// AsViolation reports whether err is a constraint violation, and which.
func AsViolation(err error) (*Violation, bool) {
	var pqErr *pq.Error
	if !errors.As(err, &pqErr) {
		return nil, false
	}
	cols, vals := keyValues(pqErr.Detail)
	switch pqErr.Code {
	case "23505", "23P01":
		if cols == "" {
			return &Violation{Unique, "conflicts with an existing record"}, true
		}
		return &Violation{Unique, "already exists: " + pairs(cols, vals)}, true
	case "23503":
		if strings.Contains(pqErr.Detail, "still referenced") {
			return &Violation{ForeignKey, "still in use: " + pairs(cols, vals)}, true
		}
		if cols == "" {
			return &Violation{ForeignKey, "refers to something unknown"}, true
		}
		return &Violation{ForeignKey, "unknown " + pairs(cols, vals)}, true
	case "23514":
		return &Violation{Check, "value out of range for " + checkedField(pqErr)}, true
	case "23502":
		return &Violation{Check, fieldName(pqErr.Column) + " is required"}, true
	}
	return nil, false
}

func keyValues(detail string) (cols, vals string) {
	m := keyDetail.FindStringSubmatch(detail)
	if m == nil {
		return "", ""
	}
	return m[1], m[2]
}

// pairs writes `engineer "x"` or `manufacturer "GE", case_number "C-1"`.
func pairs(cols, vals string) string {
	cs, vs := strings.Split(cols, ", "), strings.Split(vals, ", ")
	if len(cs) != len(vs) {
		return fmt.Sprintf("%s %q", cols, vals)
	}
	out := make([]string, len(cs))
	for i := range cs {
		out[i] = fmt.Sprintf("%s %q", fieldName(cs[i]), vs[i])
	}
	return strings.Join(out, ", ")
}

// fieldName is a column as the API names it: engineer_id is "engineer".
func fieldName(col string) string {
	col = strings.Trim(col, `"`)
	if c, ok := strings.CutSuffix(col, "_id"); ok {
		return c
	}
	if col == "" {
		return "a field"
	}
	return col
}

// checkedField guesses the column of a check constraint from PostgreSQL's
// default name for it, <table>_<column>_check; other names tell nothing a
// person could use.
func checkedField(e *pq.Error) string {
	if e.Column != "" {
		return fieldName(e.Column)
	}
	rest, ok := strings.CutPrefix(e.Constraint, e.Table+"_")
	if col, isDefault := strings.CutSuffix(rest, "_check"); ok && isDefault && col != "" {
		return fieldName(col)
	}
	return "a field"
}

// Busy reports whether err means the database could not answer in time —
// the request's deadline, statement_timeout, a lock wait, a session ended
// for idling in its transaction — rather than that the request is wrong:
// worth a 503 and a retry.
func Busy(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, driver.ErrBadConn) {
		return true
	}
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		switch pqErr.Code {
		case "57014", "55P03", "25P03", "40001", "40P01": // canceled, lock not available, idle in transaction, serialization, deadlock
			return true
		}
	}
	return false
}
