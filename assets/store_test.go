package assets

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/vigia-noc/vigia/internal/pgtest"
)

func parseTestFile(t *testing.T, data string) *File {
	t.Helper()
	t.Setenv("ACME_SNMP_AUTH", "auth-passphrase-secret")
	f, err := ParseFile("test.yaml", []byte(data), ParseOptions{KnownPolicy: knownTestPolicy})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func count(t *testing.T, db *sqlx.DB, q string) int {
	t.Helper()
	var n int
	if err := db.Get(&n, q); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestImportIdempotentAndRetires(t *testing.T) {
	db := pgtest.DB(t)
	s := NewStore(db)
	ctx := context.Background()
	raw, _ := os.ReadFile("testdata/valid-minimal.yaml")
	full := string(raw)
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

	sum, err := s.Import(ctx, parseTestFile(t, full), t0, false)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Created["device"] != 3 || sum.Created["contract"] != 1 || sum.Created["site"] != 1 {
		t.Fatalf("first import: %+v", sum)
	}
	sum, err = s.Import(ctx, parseTestFile(t, full), t0.Add(time.Hour), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Created)+len(sum.Updated) != 0 || sum.Unchanged["device"] != 3 || sum.Retired["device"] != 0 {
		t.Fatalf("re-import must change nothing: %+v", sum)
	}

	// Only the hash of the heartbeat token is stored.
	if n := count(t, db, `SELECT count(*) FROM devices WHERE heartbeat_token_sha256 = sha256('acme-pacs-heartbeat-0001')`); n != 1 {
		t.Fatalf("heartbeat token hash not found")
	}
	var dump string
	if err := db.Get(&dump, `SELECT string_agg(d::text, ' ') FROM devices d`); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(dump, "acme-pacs-heartbeat-0001") {
		t.Fatal("heartbeat token stored in clear")
	}

	// The CT leaves the file: retired, not deleted; history stays.
	withoutCT := full[:strings.Index(full, "          - id: acme-ct")] + full[strings.Index(full, "    contracts:"):]
	sum, err = s.Import(ctx, parseTestFile(t, withoutCT), t0.Add(2*time.Hour), false)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Retired["device"] != 1 {
		t.Fatalf("want 1 device retired: %+v", sum)
	}
	if n := count(t, db, `SELECT count(*) FROM devices WHERE id = 'acme-ct' AND retired_at IS NOT NULL`); n != 1 {
		t.Fatal("acme-ct must still exist, retired")
	}
	active, err := s.Devices(ctx, DeviceFilter{})
	if err != nil || len(active) != 2 {
		t.Fatalf("active devices = %d, %v; want 2", len(active), err)
	}
	// Back in the file: the same row comes back to life.
	sum, err = s.Import(ctx, parseTestFile(t, full), t0.Add(3*time.Hour), false)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Updated["device"] != 1 || sum.Created["device"] != 0 {
		t.Fatalf("re-adding a retired device must revive it: %+v", sum)
	}
	if n := count(t, db, `SELECT count(*) FROM devices`); n != 3 {
		t.Fatalf("devices rows = %d, want 3 (no duplicates)", n)
	}
}

func TestImportDryRunChangesNothing(t *testing.T) {
	db := pgtest.DB(t)
	s := NewStore(db)
	raw, _ := os.ReadFile("testdata/valid-minimal.yaml")
	sum, err := s.Import(context.Background(), parseTestFile(t, string(raw)), time.Now(), true)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Created["device"] != 3 {
		t.Fatalf("dry run must report what it would do: %+v", sum)
	}
	for _, table := range []string{"customers", "sites", "devices", "contracts", "contract_devices"} {
		if n := count(t, db, `SELECT count(*) FROM `+table); n != 0 {
			t.Errorf("dry run left %d rows in %s", n, table)
		}
	}
}

func TestStoreCoverageAndScope(t *testing.T) {
	db := pgtest.DB(t)
	s := NewStore(db)
	ctx := context.Background()
	raw, _ := os.ReadFile("testdata/valid-minimal.yaml")
	if _, err := s.Import(ctx, parseTestFile(t, string(raw)), time.Now(), false); err != nil {
		t.Fatal(err)
	}
	ds, err := s.Devices(ctx, DeviceFilter{})
	if err != nil {
		t.Fatal(err)
	}
	cov, err := s.CoverageOf(ctx, ds, time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if c := cov["acme-pacs"]; !c.Covered() || c.SLAPolicy != "imaging-8x5" {
		t.Errorf("acme-pacs coverage = %+v", c)
	}
	if c := cov["acme-ct"]; c.Covered() || c.Reason != ReasonDeviceNotListed {
		t.Errorf("acme-ct coverage = %+v", c)
	}
	if _, err := s.Device(ctx, Scope{CustomerID: "someone-else"}, "acme-pacs"); err != ErrNotFound {
		t.Errorf("out-of-scope device: err = %v, want ErrNotFound", err)
	}
	d, err := s.Device(ctx, Scope{CustomerID: "acme"}, "acme-pacs")
	if err != nil || d.SNMP == nil || d.SNMP.AuthPassphrase.Reveal() != "auth-passphrase-secret" || d.Heartbeat.Grace != 5*time.Minute {
		t.Errorf("device read back wrong: %+v, %v", d, err)
	}
	if w := d.DICOM.Worklist; w == nil || *w != (WorklistCheck{Modality: "CT", StationAE: "CT01", ExpectItems: true}) {
		t.Errorf("worklist check read back wrong: %+v", w)
	}
	if h := d.HL7; h == nil || *h != (HL7Endpoint{Host: "127.0.0.1", Port: 2575, SendingApp: DefaultHL7SendingApp, ReceivingApp: "RIS",
		MessageType: DefaultHL7MessageType}) {
		t.Errorf("hl7 endpoint read back wrong: %+v", h)
	}
	if hb, err := s.DeviceByHeartbeatToken(ctx, "acme-pacs-heartbeat-0001"); err != nil || hb.ID != "acme-pacs" {
		t.Errorf("DeviceByHeartbeatToken = %v, %v", hb.ID, err)
	}

	// Summaries name the same devices with what identifies them, and carry
	// no endpoint address or secret.
	for _, sc := range []DeviceFilter{{}, {Scope: Scope{CustomerID: "acme"}}, {Scope: Scope{CustomerID: "someone-else"}}, {Kind: "pacs"}} {
		full, err := s.Devices(ctx, sc)
		if err != nil {
			t.Fatal(err)
		}
		brief, err := s.DeviceSummaries(ctx, sc)
		if err != nil || len(brief) != len(full) {
			t.Fatalf("%+v: %d summaries (%v), %d devices", sc, len(brief), err, len(full))
		}
		for i, b := range brief {
			f := full[i]
			if b.ID != f.ID || b.CustomerID != f.CustomerID || b.SiteID != f.SiteID || b.Name != f.Name || b.Kind != f.Kind ||
				b.Serial != f.Serial || b.Model != f.Model || (f.DICOM == nil) != (b.DICOM == nil) {
				t.Errorf("summary %+v of %+v", b, f)
			}
			if f.DICOM != nil && (b.DICOM.CalledAE != f.DICOM.CalledAE || b.DICOM.Host != "" || b.DICOM.Port != 0) {
				t.Errorf("summary DICOM %+v of %+v", b.DICOM, f.DICOM)
			}
			if b.SNMP != nil || b.TCP != nil || b.Heartbeat != nil {
				t.Errorf("summary of %s carries endpoints: %+v", b.ID, b)
			}
		}
	}
}

// A sender is a contact first (with the contact's language, the
// customer's by default), else someone of a customer's domain, else nobody.
func TestMatchSender(t *testing.T) {
	db := pgtest.DB(t)
	s := NewStore(db)
	ctx := context.Background()
	raw, _ := os.ReadFile("testdata/valid-minimal.yaml")
	if _, err := s.Import(ctx, parseTestFile(t, string(raw)), time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), false); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr, customer, name, lang string
		known, found               bool
	}{
		{"ana.perez@acme.example.co", "acme", "Ana Pérez", "es", true, true},
		{"IT@Acme.Example.co", "acme", "Radiology IT", "en", true, true},
		{"someone.else@acme.example.co", "acme", "", "es", false, true},
		{"ana.perez@other.example", "", "", "", false, false},
		{"not-an-address", "", "", "", false, false},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			got, err := s.MatchSender(ctx, tc.addr)
			if !tc.found {
				if err != ErrNotFound {
					t.Fatalf("MatchSender = %+v, %v; want ErrNotFound", got, err)
				}
				return
			}
			if err != nil || got.CustomerID != tc.customer || got.Contact.Name != tc.name || got.Contact.Language != tc.lang || got.Known != tc.known {
				t.Fatalf("MatchSender = %+v, %v", got, err)
			}
		})
	}
	// Re-importing changes nothing; a contact left out of the file is removed.
	sum, err := s.Import(ctx, parseTestFile(t, strings.Replace(string(raw), "      - name: Radiology IT\n        email: it@acme.example.co\n        language: en\n", "", 1)),
		time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC), false)
	if err != nil || sum.Retired["contact"] != 1 || sum.Unchanged["contact"] != 1 {
		t.Fatalf("re-import without a contact: %+v, %v", sum, err)
	}
	if got, err := s.MatchSender(ctx, "it@acme.example.co"); err != nil || got.Known {
		t.Fatalf("a removed contact still matches as a contact: %+v, %v", got, err)
	}
}
