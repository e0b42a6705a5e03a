package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/probes"
)

// trapFlags are serve's flags for SNMP traps and the storage forecast.
type trapFlags struct {
	listen, rules, engineID         string
	window, threshold, urgent, step time.Duration
}

// registerTrapListen adds the flags of a trap receiver, serve's or a
// collector's.
func registerTrapListen(fs *flag.FlagSet, listen, engineID *string) {
	fs.StringVar(listen, "snmp-trap-listen", os.Getenv("VIGIA_SNMP_TRAP_LISTEN"),
		"UDP address receiving SNMP traps and informs, e.g. 0.0.0.0:162 (env VIGIA_SNMP_TRAP_LISTEN); empty: none")
	fs.StringVar(engineID, "snmp-trap-engine-id", "", "this receiver's SNMPv3 engine ID in hex, 5 to 32 bytes (default 80001f88047669676961)")
}

// trapSocket checks the engine ID and binds the trap address now, so that
// a port in use stops the command before it starts.
func trapSocket(listen, engineIDHex string) (net.PacketConn, string, error) {
	var engineID []byte
	if engineIDHex != "" {
		var err error
		if engineID, err = hex.DecodeString(engineIDHex); err != nil {
			return nil, "", usageError("--snmp-trap-engine-id: want hex digits")
		}
		if n := len(engineID); n < 5 || n > 32 {
			return nil, "", usageError("--snmp-trap-engine-id: %d bytes, want 5 to 32", n)
		}
	}
	conn, err := net.ListenPacket("udp", listen)
	if err != nil {
		return nil, "", fmt.Errorf("listen for SNMP traps on %s: %w", listen, err)
	}
	return conn, string(engineID), nil
}

func (f *trapFlags) register(fs *flag.FlagSet) {
	registerTrapListen(fs, &f.listen, &f.engineID)
	fs.StringVar(&f.rules, "snmp-trap-rules", "", "YAML file replacing the built-in trap rules (see probes/trap_rules.yaml); they apply to traps collectors forward too")
	fs.DurationVar(&f.window, "storage-window", 14*24*time.Hour, "how far back disk readings are fitted for the \"full in N days\" forecast")
	fs.DurationVar(&f.threshold, "storage-threshold", 14*24*time.Hour, "a volume forecast full sooner opens a ticket (severity 3)")
	fs.DurationVar(&f.urgent, "storage-urgent", 3*24*time.Hour, "a volume forecast full sooner is severity 2")
	fs.DurationVar(&f.step, "storage-sample-every", time.Hour, "at most one disk reading kept per volume per this step")
}

// trapParts are the pieces serve wires in: the trap conditions prober, the
// storage forecast the SNMP prober feeds, and the listener (nil when no
// address is given).
type trapParts struct {
	rules      *probes.TrapRules
	conditions *probes.TrapConditions
	trend      *probes.StorageTrend
	listener   *probes.TrapListener
	conn       net.PacketConn
}

func (f *trapFlags) build(ctx context.Context, conn *sqlx.DB, inv *assets.Store, clock clockwork.Clock, log *slog.Logger,
	reg prometheus.Registerer) (*trapParts, error) {
	if f.window <= 0 || f.threshold <= 0 || f.urgent <= 0 || f.urgent > f.threshold || f.step <= 0 {
		return nil, usageError("--storage-window, --storage-threshold, --storage-urgent and --storage-sample-every are positive, and urgent is at most the threshold")
	}
	p := &trapParts{conditions: probes.NewTrapConditions(conn)}
	if err := p.conditions.Load(ctx); err != nil {
		return nil, err
	}
	p.trend = probes.NewStorageTrend(conn, probes.StorageTrendConfig{Clock: clock, Log: log, Window: f.window,
		SampleEvery: f.step, Threshold: f.threshold, Urgent: f.urgent, Registerer: reg})
	// The rules apply to the traps collectors forward as well, with or
	// without a listener here.
	p.rules = probes.DefaultTrapRules()
	if f.rules != "" {
		data, err := os.ReadFile(f.rules)
		if err != nil {
			return nil, err
		}
		if p.rules, err = probes.ParseTrapRules(data); err != nil {
			return nil, fmt.Errorf("%s: %w", f.rules, err)
		}
	}
	if f.listen == "" {
		return p, nil
	}
	sock, engineID, err := trapSocket(f.listen, f.engineID)
	if err != nil {
		return nil, err
	}
	p.listener, err = probes.NewTrapListener(conn, probes.TrapConfig{Clock: clock, Log: log, Rules: p.rules, Inventory: inv,
		EngineID: engineID, Conditions: p.conditions, Registerer: reg})
	if err != nil {
		sock.Close()
		return nil, err
	}
	p.conn = sock
	return p, nil
}

// run serves traps and refreshes the conditions until ctx ends. check is
// called for a device a trap changed, when this instance probes it.
func (p *trapParts) run(ctx context.Context, log *slog.Logger, check func(id string)) {
	go p.conditions.Run(ctx, 15*time.Second)
	if p.listener == nil {
		return
	}
	p.listener.OnChange(check)
	log.Info("listening for SNMP traps", "addr", p.conn.LocalAddr().String())
	go func() {
		if err := p.listener.Serve(ctx, p.conn); err != nil {
			log.Error("SNMP trap listener stopped", "err", err)
		}
	}()
}
