package collector

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/probes"
)

// The site's devices send their traps to the collector, as they send
// their heartbeats: it authenticates them with the devices' own SNMP
// credentials (the same listener as serve's, fed by the configuration
// the NOC sent), and forwards each one, raw, in its numbered result
// stream. The NOC applies its trap rules to it: the collector holds no
// rules and decides nothing.

// newTrapListener prepares the listener on cfg.Traps; it is served once
// the first configuration is known.
func (c *Collector) newTrapListener() (*probes.TrapListener, error) {
	return probes.NewTrapListener(nil, probes.TrapConfig{Clock: c.cfg.Clock, Log: c.cfg.Log, Inventory: c,
		EngineID: c.cfg.TrapEngineID, Registerer: c.cfg.Registry, Sink: c,
		// Synced at once when the configuration changes; this is the
		// fallback for names (snmp.host) whose address changed.
		Refresh: max(c.cfg.ConfigEvery, 30*time.Second)})
}

// serveTraps runs the listener until ctx ends.
func (c *Collector) serveTraps(ctx context.Context, conn net.PacketConn) {
	c.cfg.Log.Info("listening for SNMP traps", "addr", conn.LocalAddr().String())
	if err := c.traps.Serve(ctx, conn); err != nil {
		c.cfg.Log.Error("SNMP trap listener stopped", "err", err)
	}
}

// Devices implements probes.DeviceSource for the trap listener: the
// devices of the configuration, the only senders it accepts.
func (c *Collector) Devices(_ context.Context, _ assets.DeviceFilter) ([]assets.Device, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]assets.Device, 0, len(c.devices))
	for _, r := range c.devices {
		out = append(out, r.device.Device())
	}
	return out, nil
}

// TakeTrap implements probes.TrapSink: the trap is queued on disk (an
// inform is acknowledged only then), and the device is checked at once,
// as serve checks a device a trap concerns, so that the NOC weighs a
// condition the trap raised without waiting for the next interval.
func (c *Collector) TakeTrap(_ context.Context, d assets.Device, t probes.Trap) (bool, error) {
	if _, err := c.cfg.Queue.Append(probes.RemoteCheck{Device: d.ID, Trap: &t}, c.cfg.Clock.Now()); err != nil {
		return false, fmt.Errorf("collector: queue trap of %s: %w", d.ID, err)
	}
	c.metrics.trapsQueued.Inc()
	c.mu.Lock()
	r := c.devices[d.ID]
	c.mu.Unlock()
	if r != nil {
		select {
		case r.now <- struct{}{}:
		default: // a check is already due
		}
	}
	return false, nil
}

// WorkingTime implements probes.WorkingHours for the worklist prober:
// only the local date, in the zone of the device's calendar the NOC
// sent. Whether it is working time is the NOC's to judge (the prober
// reports an empty worklist raw).
func (c *Collector) WorkingTime(_ context.Context, d assets.Device, t time.Time) (time.Time, bool) {
	c.mu.Lock()
	r := c.devices[d.ID]
	c.mu.Unlock()
	if r != nil && r.device.TimeZone != "" {
		if loc, err := time.LoadLocation(r.device.TimeZone); err == nil {
			return t.In(loc), true
		}
	}
	return t.UTC(), true
}
