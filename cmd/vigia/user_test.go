package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/db"
	"github.com/vigia-noc/vigia/internal/pgtest"
)

// userFixture is a database with the example inventory (customers hsr and cmf).
func userFixture(t *testing.T) string {
	t.Helper()
	url := pgtest.URL(t)
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"import", "--database-url", url, "../../examples/inventory.yaml"}, &out, &errb); code != 0 {
		t.Fatalf("import: %d %s", code, errb.String())
	}
	return url
}

func TestUserCommand(t *testing.T) {
	url := userFixture(t)
	ctx := context.Background()
	cases := []struct {
		name   string
		args   []string
		env    string // VIGIA_USER_PASSWORD
		stdin  string
		code   int
		stdout string
		stderr string
	}{
		{name: "customer from env", args: []string{"create", "--role", "customer", "--customer", "hsr", "--username", "imagenes.hsr"},
			env: "una clave bastante larga", stdout: "user imagenes.hsr created (customer of customer hsr)"},
		{name: "noc from stdin", args: []string{"create", "--role", "noc", "--username", "ana"},
			stdin: "otra clave larga de ana\nignored second line\n", stdout: "user ana created (noc)"},
		{name: "no password", args: []string{"create", "--role", "noc", "--username", "beto"}, code: 2, stderr: "no password"},
		{name: "password as a flag is refused", args: []string{"create", "--role", "noc", "--username", "beto", "--password", "x"},
			env: "una clave bastante larga", code: 2},
		{name: "password as an argument is refused", args: []string{"create", "--role", "noc", "--username", "beto", "una clave larga"},
			env: "una clave bastante larga", code: 2, stderr: "the password is never a flag"},
		{name: "short password", args: []string{"create", "--role", "noc", "--username", "beto"}, env: "corta", code: 2, stderr: "at least 10 characters"},
		{name: "taken", args: []string{"create", "--role", "noc", "--username", "ana"}, env: "una clave bastante larga", code: 2, stderr: "taken"},
		{name: "unknown customer", args: []string{"create", "--role", "customer", "--customer", "nope", "--username", "x1"},
			env: "una clave bastante larga", code: 2, stderr: `no customer "nope"`},
		{name: "engineer needs an engineer", args: []string{"create", "--role", "engineer", "--username", "x2"},
			env: "una clave bastante larga", code: 2, stderr: "needs --engineer"},
		{name: "missing role", args: []string{"create", "--username", "x3"}, env: "una clave bastante larga", code: 2, stderr: "--role and --username are required"},
		{name: "set password", args: []string{"password", "--username", "ana"}, stdin: "la nueva clave de ana\n", stdout: "password of ana set"},
		{name: "set password of nobody", args: []string{"password", "--username", "nadie"}, env: "la nueva clave de nadie", code: 2, stderr: `no user "nadie"`},
		{name: "created with a time zone", args: []string{"create", "--role", "noc", "--username", "carla", "--time-zone", "America/Lima"},
			env: "una clave bastante larga", stdout: "user carla created (noc)"},
		{name: "created with an unknown time zone", args: []string{"create", "--role", "noc", "--username", "dora", "--time-zone", "Lima"},
			env: "una clave bastante larga", code: 2, stderr: `unknown time zone "Lima"`},
		{name: "set time zone", args: []string{"time-zone", "--username", "ana", "--zone", "America/Mexico_City"}, stdout: "ana reads times in America/Mexico_City"},
		{name: "back to the default", args: []string{"time-zone", "--username", "carla", "--zone", ""}, stdout: "carla reads times in the default"},
		{name: "unknown time zone", args: []string{"time-zone", "--username", "ana", "--zone", "Mars/Olympus"}, code: 2, stderr: `unknown time zone "Mars/Olympus"`},
		{name: "time zone of nobody", args: []string{"time-zone", "--username", "nadie", "--zone", "UTC"}, code: 2, stderr: `no user "nadie"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("VIGIA_USER_PASSWORD", c.env)
			userStdin = strings.NewReader(c.stdin)
			defer func() { userStdin = strings.NewReader("") }()
			var out, errb bytes.Buffer
			code := run(ctx, append([]string{"user"}, append(c.args, "--database-url", url)...), &out, &errb)
			if code != c.code || !strings.Contains(out.String(), c.stdout) || !strings.Contains(errb.String(), c.stderr) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, c.code, out.String(), errb.String())
			}
		})
	}

	conn, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	users := auth.NewUsers(conn, nil, nil)
	for user, pw := range map[string]string{"imagenes.hsr": "una clave bastante larga", "ana": "la nueva clave de ana"} {
		_, s, err := users.Login(ctx, user, pw, "127.0.0.1", time.Now())
		if err != nil {
			t.Fatalf("%s cannot log in with the password given: %v", user, err)
		}
		if user == "imagenes.hsr" && (s.User.Role != "customer" || s.User.CustomerID != "hsr") {
			t.Fatalf("user %+v", s.User)
		}
	}
	if _, _, err := users.Login(ctx, "ana", "otra clave larga de ana", "127.0.0.1", time.Now()); err == nil {
		t.Fatal("ana's old password still works after `vigia user password`")
	}
	for user, want := range map[string]string{"ana": "America/Mexico_City", "carla": "", "imagenes.hsr": ""} {
		var got string
		if err := conn.Get(&got, `SELECT time_zone FROM console_users WHERE username = $1`, user); err != nil || got != want {
			t.Errorf("%s's time zone %q (%v), want %q", user, got, err, want)
		}
	}
	var n int
	if err := conn.Get(&n, `SELECT count(*) FROM console_users`); err != nil || n != 3 {
		t.Fatalf("%d users; the refused commands created some (%v)", n, err)
	}
}
