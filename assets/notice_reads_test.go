package assets

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/internal/pgtest"
)

// The reads the ticket stage words its tickets and messages with, over the
// minimal inventory (acme, Spanish, Bogotá) with a notification address.
func TestNoticeReads(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	raw, _ := os.ReadFile("testdata/valid-minimal.yaml")
	src := strings.Replace(string(raw), "    time_zone: America/Bogota\n", "    time_zone: America/Bogota\n    notify_email: noc@acme.example.co\n", 1)
	if _, err := NewStore(db).Import(ctx, parseTestFile(t, src), time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), false); err != nil {
		t.Fatal(err)
	}

	t.Run("addressee", func(t *testing.T) {
		for _, tc := range []struct {
			id   string
			want Addressee
			err  error
		}{
			{"acme", Addressee{CustomerID: "acme", Name: "Clínica Acme", Language: "es", TimeZone: "America/Bogota", NotifyEmail: "noc@acme.example.co"}, nil},
			{"nobody", Addressee{CustomerID: "nobody"}, ErrNotFound},
		} {
			got, err := AddresseeTx(ctx, db, tc.id)
			if got != tc.want || !errors.Is(err, tc.err) {
				t.Errorf("AddresseeTx(%s) = %+v, %v; want %+v, %v", tc.id, got, err, tc.want, tc.err)
			}
		}
	})

	t.Run("site and language", func(t *testing.T) {
		name, lang, err := SiteAndLanguageTx(ctx, db, "acme-main")
		if err != nil || name != "Sede principal" || lang != "es" {
			t.Errorf("SiteAndLanguageTx(acme-main) = %q, %q, %v", name, lang, err)
		}
		if _, _, err := SiteAndLanguageTx(ctx, db, "nowhere"); !errors.Is(err, ErrNotFound) {
			t.Errorf("SiteAndLanguageTx(nowhere) = %v, want ErrNotFound", err)
		}
	})

	tx := db.MustBegin()
	defer tx.Rollback()
	for _, tc := range []struct {
		name string
		read func([]string) ([]string, error)
		ids  []string
		want []string
	}{
		{"site names sorted, unknown left out", func(ids []string) ([]string, error) { return SiteNamesTx(ctx, tx, ids) },
			[]string{"nowhere", "acme-main"}, []string{"Sede principal"}},
		{"no sites", func(ids []string) ([]string, error) { return SiteNamesTx(ctx, tx, ids) }, nil, nil},
		{"device names in the order asked", func(ids []string) ([]string, error) { return DeviceNamesTx(ctx, tx, ids) },
			[]string{"acme-pacs", "acme-gw", "nothing", "acme-ct"}, []string{"PACS", "Router", "CT"}},
		{"no devices", func(ids []string) ([]string, error) { return DeviceNamesTx(ctx, tx, ids) }, nil, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.read(tc.ids)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
