package assets

import (
	"context"
	"encoding/hex"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/internal/pgtest"
)

// The id-only reads other stages use: devices by kind (retired ones too),
// a site's active devices, the sites of reported devices, heartbeat token
// hashes, and a customer's notification addresses; through InTx they read
// in the caller's transaction.
func TestIDReads(t *testing.T) {
	db := pgtest.DB(t)
	s := NewStore(db)
	ctx := context.Background()
	raw, err := os.ReadFile("testdata/valid-minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(ctx, parseTestFile(t, string(raw)), time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), false); err != nil {
		t.Fatal(err)
	}
	db.MustExec(`UPDATE devices SET retired_at = now() WHERE id = 'acme-ct'`)
	db.MustExec(`UPDATE customers SET notify_email = 'Ana <ana@acme.example.co>, it@acme.example.co' WHERE id = 'acme'`)

	tx := db.MustBegin()
	defer tx.Rollback()
	for name, st := range map[string]*Store{"pool": s, "transaction": s.InTx(tx)} {
		t.Run(name, func(t *testing.T) {
			if ids, err := st.DeviceIDsOfKinds(ctx, "modality", "pacs"); err != nil || !slices.Equal(ids, []string{"acme-ct", "acme-pacs"}) {
				t.Errorf("devices of kinds = %v, %v; want the retired CT too", ids, err)
			}
			if ids, err := st.ActiveDeviceIDsAt(ctx, []string{"acme-main", "elsewhere"}); err != nil || !slices.Equal(ids, []string{"acme-gw", "acme-pacs"}) {
				t.Errorf("active devices of the site = %v, %v", ids, err)
			}
			sites, err := st.ActiveDeviceSites(ctx, []string{"acme-pacs", "acme-ct", "nobody"})
			if err != nil || len(sites) != 1 || sites["acme-pacs"] != "acme-main" {
				t.Errorf("sites of devices = %v, %v; want the active PACS only", sites, err)
			}
			hashes, err := st.HeartbeatTokenHashes(ctx, []string{"acme-main"})
			want := HashToken("acme-pacs-heartbeat-0001")
			if err != nil || len(hashes) != 1 || hashes["acme-pacs"] != hex.EncodeToString(want) {
				t.Errorf("heartbeat hashes = %v, %v", hashes, err)
			}
		})
	}
}
