package probes

import (
	"context"
	"testing"
	"time"

	"github.com/vigia-noc/vigia/assets"
)

// A device taken out of service (a failed electrical safety test) is
// still probed but shows maintenance and raises no outage while it is
// out; back in service, its failure is an outage again.
func TestOutOfServiceRaisesNoOutage(t *testing.T) {
	f := newFleet(t)
	h := newHarness(t, f.inventory)
	setStatus := func(status string) {
		t.Helper()
		tx, err := h.db.Beginx()
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if _, err := assets.SetOperationalStatusTx(context.Background(), tx, "flappy", status, "IEC 62353", time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if _, err := h.engine.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	setStatus(assets.OutOfService)
	f.flappy.down()
	for range 3 {
		if s := h.check("flappy"); s != StateMaintenance {
			t.Fatalf("out of service: %s, want maintenance", s)
		}
	}
	if n := h.count(`SELECT count(*) FROM outages WHERE device_id = 'flappy'`); n != 0 {
		t.Fatalf("outages of a device out of service = %d", n)
	}
	setStatus(assets.InService)
	if s := h.check("flappy"); s != StateDown {
		t.Fatalf("back in service and failing: %s, want down", s)
	}
	if n := h.count(`SELECT count(*) FROM outages WHERE device_id = 'flappy'`); n != 1 {
		t.Fatalf("outages once back in service = %d, want 1", n)
	}
}
