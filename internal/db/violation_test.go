package db_test

import (
	"context"
	"strings"
	"testing"

	"github.com/vigia-noc/vigia/internal/db"
	"github.com/vigia-noc/vigia/internal/pgtest"
)

func TestAsViolation(t *testing.T) {
	conn := pgtest.DB(t)
	ctx := context.Background()
	if _, err := conn.ExecContext(ctx, `CREATE TABLE v_engineers (id text PRIMARY KEY);
		CREATE TABLE v_cases (manufacturer text, case_number text, engineer_id text REFERENCES v_engineers,
			hours int CHECK (hours > 0), note text NOT NULL DEFAULT '', UNIQUE (manufacturer, case_number));
		INSERT INTO v_engineers VALUES ('eng-laura');
		INSERT INTO v_cases VALUES ('GE', 'C-1', 'eng-laura', 1);`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, sql string
		kind, msg string
	}{
		{"unique", `INSERT INTO v_cases VALUES ('GE', 'C-1', NULL, 1)`, db.Unique, `already exists: manufacturer "GE", case_number "C-1"`},
		{"foreign key", `INSERT INTO v_cases VALUES ('GE', 'C-2', 'eng-x', 1)`, db.ForeignKey, `unknown engineer "eng-x"`},
		{"still referenced", `DELETE FROM v_engineers`, db.ForeignKey, `still in use: id "eng-laura"`},
		{"check", `INSERT INTO v_cases VALUES ('GE', 'C-3', NULL, 0)`, db.Check, `value out of range for hours`},
		{"not null", `INSERT INTO v_cases VALUES ('GE', 'C-4', NULL, 1, NULL)`, db.Check, `note is required`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := conn.ExecContext(ctx, c.sql)
			v, ok := db.AsViolation(err)
			if !ok {
				t.Fatalf("%v: not a violation", err)
			}
			if v.Kind != c.kind || v.Message != c.msg {
				t.Errorf("%s %q, want %s %q", v.Kind, v.Message, c.kind, c.msg)
			}
			for _, internal := range []string{"v_cases", "v_engineers", "_key", "_fkey", "pq:"} {
				if strings.Contains(v.Message, internal) {
					t.Errorf("%q names %q", v.Message, internal)
				}
			}
		})
	}
	if _, ok := db.AsViolation(context.DeadlineExceeded); ok {
		t.Error("a deadline taken for a violation")
	}
	if !db.Busy(context.DeadlineExceeded) {
		t.Error("a deadline is not busy")
	}
}
