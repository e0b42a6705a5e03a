package pgtest

import (
	"net/url"
	"testing"

	"github.com/jmoiron/sqlx"
)

// Outage makes one test database unreachable and reachable again, as a
// PostgreSQL restart looks to its clients — new connections refused
// ("not accepting connections"), open ones ended — while the shared test
// cluster keeps serving every other test.
type Outage struct {
	t     testing.TB
	name  string
	admin *sqlx.DB
}

// NewOutage controls the database of rawURL (from URL).
func NewOutage(t testing.TB, rawURL string) *Outage {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	name := u.Path[1:]
	u.Path = "/postgres"
	admin, err := sqlx.Open("postgres", u.String())
	if err != nil {
		t.Fatal(err)
	}
	o := &Outage{t: t, name: name, admin: admin}
	t.Cleanup(func() {
		o.admin.Exec(`ALTER DATABASE ` + o.name + ` WITH ALLOW_CONNECTIONS true`)
		o.admin.Close()
	})
	return o
}

// Down refuses new connections and ends the open ones.
func (o *Outage) Down() {
	o.t.Helper()
	o.admin.MustExec(`ALTER DATABASE ` + o.name + ` WITH ALLOW_CONNECTIONS false`)
	o.admin.MustExec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, o.name)
}

// Up accepts connections again.
func (o *Outage) Up() {
	o.t.Helper()
	o.admin.MustExec(`ALTER DATABASE ` + o.name + ` WITH ALLOW_CONNECTIONS true`)
}
