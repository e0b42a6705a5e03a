package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/vigia-noc/vigia/assets"
	"github.com/vigia-noc/vigia/biomed"
	"github.com/vigia-noc/vigia/dispatch"
	"github.com/vigia-noc/vigia/internal/auth"
	"github.com/vigia-noc/vigia/internal/console"
	"github.com/vigia-noc/vigia/internal/db"
	"github.com/vigia-noc/vigia/internal/leader"
	"github.com/vigia-noc/vigia/internal/server"
	"github.com/vigia-noc/vigia/mailintake"
	"github.com/vigia-noc/vigia/maintenance"
	"github.com/vigia-noc/vigia/maintenance/intake"
	"github.com/vigia-noc/vigia/maintenance/notify"
	"github.com/vigia-noc/vigia/maintenance/sla"
	"github.com/vigia-noc/vigia/maintenance/sweeps"
	"github.com/vigia-noc/vigia/probes"
	"github.com/vigia-noc/vigia/reports"
)

func init() {
	register(command{name: "serve", summary: "run the NOC: API, console and /metrics", run: runServe})
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "[flags]", `
Runs Vigía: migrates the database, optionally imports an inventory, and
serves the API (/api/v1, bearer tokens), /healthz, /readyz and /metrics.

With DATABASE_URL unset it starts (or reuses) a private PostgreSQL under
--data-dir/pg and stops it on exit if it started it.`, stdout, stderr)
	dbf := dbFlags{ownCluster: true}
	dbf.register(fs)
	listen := fs.String("listen", envOr("VIGIA_LISTEN", "127.0.0.1:8080"), "HTTP listen address (env VIGIA_LISTEN)")
	importFile := fs.String("import", "", "import this inventory file before serving")
	demo := fs.Bool("demo", false, "create and print API tokens for NOC staff and each customer (for `make run`)")
	logLevel := fs.String("log-level", envOr("VIGIA_LOG_LEVEL", "info"), "debug, info, warn or error (env VIGIA_LOG_LEVEL)")
	probing := fs.Bool("probe", true, "probe the inventory's devices (false: serve the API only)")
	concurrency := fs.Uint("probe-concurrency", 256, "device checks running at once")
	instanceID := fs.String("instance-id", envOr("VIGIA_INSTANCE_ID", defaultInstanceID()),
		"name of this instance among several sharing one database (env VIGIA_INSTANCE_ID)")
	leaseTTL := fs.Duration("lease-ttl", 15*time.Second, "probe shard lease: a dead instance's devices are taken over within this time")
	publicURL := fs.String("public-url", os.Getenv("VIGIA_PUBLIC_URL"),
		"URL people reach this Vigía's console at, for links in e-mails: engineers' visit pages, the monthly report's PDF (env VIGIA_PUBLIC_URL); empty: the listen address for visit links, no link in the monthly report")
	smtpAddr := fs.String("smtp-addr", os.Getenv("VIGIA_SMTP_ADDR"), "SMTP relay host:port for notifications (env VIGIA_SMTP_ADDR); empty: e-mails wait in the outbox")
	smtpFrom := fs.String("smtp-from", envOr("VIGIA_SMTP_FROM", "vigia@localhost"), "sender address of notifications (env VIGIA_SMTP_FROM)")
	smtpUser := fs.String("smtp-user", os.Getenv("VIGIA_SMTP_USER"), "SMTP user (env VIGIA_SMTP_USER; password in VIGIA_SMTP_PASSWORD or VIGIA_SMTP_PASSWORD_FILE)")
	var imapURLs stringsFlag
	fs.Var(&imapURLs, "imap-url", "read customers' e-mail from `imap[s]://USER@HOST[:PORT]/MAILBOX` (repeatable; password in VIGIA_IMAP_PASSWORD or VIGIA_IMAP_PASSWORD_FILE)")
	imapPoll := fs.Duration("imap-poll", 30*time.Second, "how often a mailbox is read when its server has no IDLE")
	imapArchive := fs.String("imap-archive", envOr("VIGIA_IMAP_ARCHIVE", "Archive"), "mailbox that read messages are moved to (env VIGIA_IMAP_ARCHIVE)")
	collectorGrace := fs.Duration("collector-grace", 3*time.Minute,
		"a collector silent this long is lost: one monitoring-lost ticket, its devices unknown")
	webhookURL := fs.String("notify-webhook", os.Getenv("VIGIA_NOTIFY_WEBHOOK_URL"),
		"URL receiving every notification as signed JSON (env VIGIA_NOTIFY_WEBHOOK_URL; secret in VIGIA_NOTIFY_WEBHOOK_SECRET or _FILE)")
	var trapf trapFlags
	trapf.register(fs)
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	if u, err := url.Parse(*publicURL); *publicURL != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "") {
		return usageError("--public-url %q: an http(s) address such as https://vigia.example.org", *publicURL)
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	// One clock from here down: probes take it whole (timers), the rest its Now.
	clock := clockwork.NewRealClock()
	now := clock.Now
	smtpPassword, err := secretFromEnv("VIGIA_SMTP_PASSWORD")
	if err != nil {
		return err
	}
	webhookSecret, err := secretFromEnv("VIGIA_NOTIFY_WEBHOOK_SECRET")
	if err != nil {
		return err
	}
	imapPassword, err := secretFromEnv("VIGIA_IMAP_PASSWORD")
	if err != nil {
		return err
	}
	var mailboxes []mailintake.Mailbox
	for _, u := range imapURLs {
		box, err := mailintake.ParseMailbox(u, imapPassword, *imapArchive)
		if err != nil {
			return usageError("--imap-url: %v", err)
		}
		mailboxes = append(mailboxes, box)
	}
	if len(mailboxes) > 0 && imapPassword == "" {
		return usageError("--imap-url needs VIGIA_IMAP_PASSWORD (or _FILE)")
	}
	if *webhookURL != "" && webhookSecret == "" {
		return usageError("--notify-webhook needs VIGIA_NOTIFY_WEBHOOK_SECRET (or _FILE) to sign what it sends")
	}

	// Parse the inventory before touching anything, so a bad file changes nothing.
	var inv *assets.File
	if *importFile != "" {
		data, err := os.ReadFile(*importFile)
		if err != nil {
			return err
		}
		if inv, err = assets.ParseFile(*importFile, data, parseOptions()); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	defer ln.Close()

	conn, closeDB, err := dbf.open(ctx, log)
	if err != nil {
		return err
	}
	defer closeDB()
	health, err := db.OpenHealth(ctx, dbf.opened)
	if err != nil {
		return err
	}
	defer health.Close()
	store := assets.NewStore(conn)
	if inv != nil {
		sum, err := store.Import(ctx, inv, now(), false)
		if err != nil {
			return err
		}
		log.Info("inventory imported", "file", *importFile, "devices_created", sum.Created["device"],
			"devices_updated", sum.Updated["device"], "devices_retired", sum.Retired["device"])
	}
	tokens := auth.NewTokens(conn, now)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector())

	probeMetrics := probes.NewMetrics(reg)
	probeStore := probes.NewStore(conn)
	traps, err := trapf.build(ctx, conn, store, clock, log, reg)
	if err != nil {
		return err
	}
	snmpProber := probes.NewSNMPProber()
	snmpProber.Trend = traps.trend
	hours := contractHours{inv: store, policies: sla.Presets()}
	engine, err := probes.NewEngine(ctx, probeStore, store, probes.Config{
		Clock: clock, Log: log, Metrics: probeMetrics,
		Probers: map[string]probes.Prober{
			"dicom":     &probes.DICOM{Slow: 2 * time.Second},
			"snmp":      snmpProber,
			"trap":      traps.conditions,
			"tcp":       &probes.TCP{Slow: 2 * time.Second},
			"heartbeat": &probes.Heartbeat{Log: probeStore, Clock: clock, Started: clock.Now()},
			"worklist":  &probes.Worklist{Clock: clock, Hours: hours},
			"hl7":       &probes.HL7{},
		},
		// A collector's stream is applied as serve's own probes and
		// listener would: the same trap rules and calendar.
		TrapRules: traps.rules, TrapConditions: traps.conditions, WorkingHours: hours,
	})
	if err != nil {
		return err
	}
	// Devices are shared between instances through shard leases; alone, an
	// instance holds every shard.
	leaser := probes.NewLeaser(conn, *instanceID, *leaseTTL, log)
	sched, err := probes.NewScheduler(engine, probes.SchedulerConfig{Concurrency: *concurrency, Owns: leaser.Owns})
	if err != nil {
		return err
	}
	leaser.OnChange = sched.TriggerSync
	sched.RegisterMetrics(reg)

	var webhookURLs []string
	hooks := &notify.Webhooks{Secrets: map[string][]byte{}}
	if *webhookURL != "" {
		webhookURLs = []string{*webhookURL}
		hooks.Secrets[*webhookURL] = []byte(webhookSecret)
	}
	tickets := maintenance.NewStore(conn, store, maintenance.Options{WebhookURLs: webhookURLs})
	dispatchStore := dispatch.NewStore(conn, store, tickets)
	dispatchStore.SetOrganizer(*smtpFrom)
	ticketMetrics := maintenance.NewMetrics(reg, conn)
	maintenance.RegisterOutboxMetrics(reg, conn)
	dispatch.RegisterMetrics(reg, conn)
	// A nil interface, not a nil *SMTP, when no relay is set: e-mails then
	// wait in the outbox with the reason.
	var mailer notify.Mailer
	if *smtpAddr != "" {
		mailer = &notify.SMTP{Addr: *smtpAddr, From: *smtpFrom, Username: *smtpUser, Password: smtpPassword}
	}

	mail := mailintake.New(conn, tickets, store, now, log)
	mail.RegisterMetrics(reg)
	users := auth.NewUsers(conn, tickets, store)
	biomedStore := biomed.NewStore(conn, store, tickets, dispatchStore)
	reporter := &reports.Reporter{Inventory: store, History: probeStore, Tickets: tickets, Field: dispatchStore,
		Biomedical: biomedStore, Policies: []*sla.Set{sla.Presets()}, Now: now}
	web, err := console.New(console.Config{Users: users, Assets: store, Tickets: tickets, Dispatch: dispatchStore, Mail: mail, Probes: probeStore, History: probeStore, Now: now, Log: log,
		Reports: reporter, Biomedical: biomedStore})
	if err != nil {
		return err
	}
	handler := server.Handler(httpConfig(httpDeps{conn: conn, health: health, tokens: tokens, reg: reg, log: log, assets: store,
		probes: probeStore, probeMetrics: probeMetrics, engine: engine, tickets: tickets, dispatch: dispatchStore, clock: clock, mail: mail, console: web}))
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}

	base := "http://" + ln.Addr().String()
	if *publicURL != "" {
		dispatchStore.SetConsoleURL(*publicURL)
	} else {
		dispatchStore.SetConsoleURL(base)
	}
	if *demo {
		if err := printDemoTokens(ctx, stdout, store, tokens, base); err != nil {
			return err
		}
		if _, err := console.CreateDemoUsers(ctx, stdout, users, store, dispatchStore, base, now()); err != nil {
			return err
		}
	}
	log.Info("serving", "url", base, "api", base+"/api/v1/devices", "metrics", base+"/metrics")

	errc := make(chan error, 2)
	go func() { errc <- fmt.Errorf("http: %w", srv.Serve(ln)) }()
	// Probing stops (and gives its leases back) before the database
	// connection closes.
	var probingDone sync.WaitGroup
	defer probingDone.Wait()
	probeCtx, stopProbing := context.WithCancel(ctx)
	defer stopProbing() // runs before the Wait above
	if *probing {
		if err := leaser.Step(ctx); err != nil {
			return err
		}
		probingDone.Add(3)
		go func() {
			defer probingDone.Done()
			if err := leaser.Run(probeCtx); err != nil {
				log.Warn("probe leases", "err", err)
			}
		}()
		go func() {
			defer probingDone.Done()
			engine.RunCollectorWatch(probeCtx, *collectorGrace, min(max(*collectorGrace/6, time.Second), 30*time.Second))
		}()
		go func() {
			defer probingDone.Done()
			if err := sched.Run(probeCtx); err != nil {
				errc <- fmt.Errorf("probes: %w", err)
			}
		}()
	}
	// A trap that changes a device's conditions has it checked at once by
	// the instance that probes it.
	traps.run(probeCtx, log, func(id string) {
		if *probing && leaser.Owns(id) {
			go engine.Check(probeCtx, id)
		}
	})
	// The flow's next stages: outages become tickets, the pre-closure
	// protocol runs, notifications leave the outbox.
	// The outage consumer runs on every instance (it is safe concurrently
	// and must react fast); the periodic service-desk jobs run on the
	// elected leader only.
	// Due instants cached by an older version (wall-clock clocks used to
	// wait for the first working instant) are recomputed once; a second
	// start finds nothing to move.
	if n, err := tickets.RecomputeOpen(ctx, now()); err != nil {
		log.Warn("recompute open tickets' SLA", "err", err)
	} else if n > 0 {
		log.Info("recomputed open tickets' SLA due instants", "tickets", n)
	}
	elector := leader.New(conn.DB, "maintenance-jobs")
	defer elector.Resign()
	background := []func() error{
		func() error { return intake.NewOutageConsumer(tickets, store, now, log).Run(ctx, time.Second) },
		func() error {
			// Last month's report to every customer on the first working
			// day of the month, through the outbox, once.
			return reports.RunMonthlyMail(ctx, &reports.MonthlyMailer{Reporter: reporter, Customers: store, Outbox: notify.NewOutbox(conn),
				Portal: strings.TrimRight(*publicURL, "/"), Log: log}, elector, now, time.Hour)
		},
		func() error {
			// Work orders, their tickets and windows, overdue calibrations:
			// idempotent and safe on every instance.
			return (&biomed.Sweeper{Store: biomedStore, Log: log}).Run(ctx, now, time.Hour)
		},
		func() error {
			return sweeps.RunScheduled(ctx, sweeps.JobsConfig{Store: tickets, Preventive: sweeps.NewPreventive(conn, store, tickets),
				Sender: notify.NewSender(conn, mailer, hooks, log), Metrics: ticketMetrics,
				Elector: elector, Now: now, Log: log})
		},
	}
	// Each mailbox is read by one instance, the holder of its election.
	for _, box := range mailboxes {
		r := &mailintake.Reader{Box: box, Intake: mail, Leader: leader.New(conn.DB, "mail-intake "+box.String()), Poll: *imapPoll, Log: log}
		log.Info("reading mailbox", "mailbox", box)
		background = append(background, func() error { return r.Run(ctx) })
	}
	for _, run := range background {
		go func() {
			if err := run(); err != nil && ctx.Err() == nil {
				errc <- err
			}
		}()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// httpDeps are the components the HTTP surface is built from.
type httpDeps struct {
	conn         *sqlx.DB
	health       *sqlx.DB // nil: /readyz pings through conn
	tokens       *auth.Tokens
	reg          *prometheus.Registry
	log          *slog.Logger
	assets       *assets.Store
	probes       *probes.Store
	probeMetrics *probes.Metrics
	engine       *probes.Engine // decides collectors' results
	tickets      *maintenance.Store
	dispatch     *dispatch.Store
	clock        clockwork.Clock
	mail         *mailintake.Intake
	console      *console.Console // nil: no web console
}

// httpConfig lists every API of `vigia serve`; the authorization tests
// build the same surface from it.
func httpConfig(d httpDeps) server.Config {
	now := d.clock.Now
	bio := biomed.NewStore(d.conn, d.assets, d.tickets, d.dispatch)
	c := server.Config{
		DB: d.conn, Health: d.health, Tokens: d.tokens, Registry: d.reg, Log: d.log,
		API: []server.Routes{assets.NewAPI(d.assets, now), probes.NewAPI(d.probes, d.assets, now),
			maintenance.NewAPI(d.tickets, now, d.log), intake.NewAPI(intake.NewReceiver(d.tickets, d.assets), now, d.log),
			sweeps.NewAPI(sweeps.NewPreventive(d.conn, d.assets, d.tickets), now, d.log),
			dispatch.NewAPI(d.dispatch, now, d.log),
			reports.NewAPI(&reports.Reporter{Inventory: d.assets, History: d.probes, Tickets: d.tickets, Field: d.dispatch,
				Biomedical: bio, Policies: []*sla.Set{sla.Presets()}, Now: now}, d.log),
			mailintake.NewAPI(d.mail, d.log), biomed.NewAPI(bio, now, d.log)},
		Public: []server.Routes{&probes.HeartbeatAPI{Devices: d.assets, Log: d.probes, Clock: d.clock, Metrics: d.probeMetrics}},
	}
	// Collectors authenticate with their own tokens, scoped to their sites.
	collectorAPI := &probes.CollectorAPI{Store: d.probes, Engine: d.engine, Devices: d.assets, Clock: d.clock, Log: d.log}
	collectorAPI.RegisterMetrics(d.reg)
	c.Public = append(c.Public, collectorAPI)
	if d.console != nil {
		c.Public = append(c.Public, d.console)
	}
	return c
}

// defaultInstanceID names this process uniquely among instances.
func defaultInstanceID() string {
	host, err := os.Hostname()
	if err != nil {
		host = "vigia"
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// secretFromEnv reads a secret from the variable name, or from the file
// named by name_FILE (for container and systemd credentials).
func secretFromEnv(name string) (string, error) {
	if v := os.Getenv(name); v != "" {
		return v, nil
	}
	path := os.Getenv(name + "_FILE")
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s_FILE: %w", name, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// printDemoTokens gives a newcomer working credentials: one NOC token and
// one per customer, with the commands to try them.
func printDemoTokens(ctx context.Context, w io.Writer, store *assets.Store, tokens *auth.Tokens, base string) error {
	noc, _, err := tokens.Create(ctx, "make run (NOC)", auth.RoleNOC, "", "")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nVigía is up at %s\n\n", base)
	fmt.Fprintf(w, "  NOC token:  %s\n", noc)
	fmt.Fprintf(w, "  try:        curl -s -H 'Authorization: Bearer %s' %s/api/v1/devices\n", noc, base)
	customers, err := store.Customers(ctx, assets.Scope{})
	if err != nil {
		return err
	}
	for _, c := range customers {
		t, _, err := tokens.Create(ctx, "make run ("+c.ID+")", auth.RoleCustomer, c.ID, "")
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "  %s (%s) token: %s\n", c.Name, c.ID, t)
	}
	fmt.Fprintf(w, "\n  metrics:    %s/metrics\n  health:     %s/healthz  %s/readyz\n\n", base, base, base)
	return nil
}

// stringsFlag is a repeatable string flag.
type stringsFlag []string

func (f *stringsFlag) String() string     { return strings.Join(*f, ",") }
func (f *stringsFlag) Set(v string) error { *f = append(*f, v); return nil }
