// Package ownership writes down who owns each table and which project
// packages may import which. Its test enforces both over the non-test Go
// sources, so a cross-owner INSERT or an import back up the flow fails
// `make test` instead of waiting for a review. README's architecture section
// is the same table in prose.
package ownership

// Owners maps every table in internal/db/migrations to the one package
// (relative to the module root) whose SQL may name it. Other packages read
// and change it only through that package's exported functions.
var Owners = map[string]string{}

func own(pkg string, tables ...string) {
	for _, t := range tables {
		Owners[t] = pkg
	}
}

func init() {
	own("assets", "customers", "sites", "devices", "contracts", "contract_devices",
		"contract_warranties", "customer_contacts")
	own("internal/auth", "api_tokens", "console_users", "console_sessions",
		"console_login_failures", "portal_seat_limits")
	own("probes", "device_states", "device_transitions", "device_events", "outages",
		"heartbeats", "maintenance_windows", "probe_instances", "probe_leases",
		"device_traps", "device_trap_conditions", "storage_samples", "storage_trends",
		"collectors", "collector_sites", "collector_results")
	own("maintenance", "tickets", "ticket_events", "ticket_counters", "ticket_outages",
		"ticket_pauses", "ticket_severity_changes", "ticket_attachments", "closure_tasks",
		"misuse_blocks", "sla_marks", "sla_outcomes")
	own("maintenance/intake", "ticket_alerts")
	own("maintenance/notify", "outbox")
	own("maintenance/sweeps", "preventive_plans", "preventive_visits")
	own("mailintake", "inbound_mail")
	own("dispatch", "engineers", "engineer_oncall", "visits", "visit_engineers",
		"visit_events", "warehouses", "parts", "stock", "part_requests",
		"part_request_events", "manufacturer_cases", "waits", "quotes", "work_entries",
		"billable_lines", "billing_flags", "hour_bank_uses")
	own("biomed", "biomed_programmes", "biomed_work_orders", "biomed_safety_tests",
		"biomed_calibration_plans", "biomed_calibrations", "biomed_usage", "biomed_alerts",
		"biomed_alert_matches")
}

// Layers orders the project's packages along the flow (inventory → probe →
// state → outage → ticket → notify/dispatch → reports → pages → commands). A
// package may import packages of its own layer's predecessors only; layer 0
// holds the shared utilities that import none of the domain. Test-support
// packages (names ending in "test") and bench/ are outside the order.
var Layers = [][]string{
	{"internal/db", "internal/httpx", "internal/server", "internal/leader", "internal/auth",
		"internal/pgserver", "maintenance/calendar", "maintenance/sla", "dicomping", "dashboards",
		"internal/ownership", "internal/testpeer"},
	{"assets"},
	{"probes", "maintenance/notify", "internal/fleetsim"},
	{"collector", "maintenance"},
	{"maintenance/intake", "maintenance/sweeps", "mailintake", "dispatch"},
	{"biomed"},
	{"reports"},
	{"internal/console"},
	{"cmd/vigia"},
}
