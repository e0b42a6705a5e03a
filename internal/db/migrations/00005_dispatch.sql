-- +goose Up
-- Field dispatch: engineers, visits, spare parts, manufacturer cases, the
-- waits that hold a ticket's SLA, and what gets billed. Overlapping
-- bookings, one open wait per source and one billable line per source are
-- constraints, so concurrent requests and retries cannot break them.

-- An engineer's agreed visits must not overlap: an exclusion constraint on
-- (engineer, time range) needs btree_gist for the text equality.
CREATE EXTENSION IF NOT EXISTS btree_gist;

-- Seed 000 §8: equipment not available at the agreed time closes the ticket.
ALTER TABLE tickets DROP CONSTRAINT tickets_close_reason_check;
ALTER TABLE tickets ADD CONSTRAINT tickets_close_reason_check CHECK (close_reason IN ('confirmed', 'accepted_no_answer',
    'auto_closed', 'resolved', 'misuse', 'duplicate', 'cancelled', 'equipment_unavailable'));

-- Imports (customs) are their own reason: seed 000 names "tiempos de
-- importaciones" apart from parts availability.
ALTER TABLE ticket_pauses DROP CONSTRAINT ticket_pauses_reason_check;
ALTER TABLE ticket_pauses ADD CONSTRAINT ticket_pauses_reason_check CHECK (reason IN ('customer', 'manufacturer', 'spare_parts',
    'import', 'third_party'));
-- Every reason that held the clock during the interval (overlapping waits
-- make one pause with several reasons). Empty: just reason.
ALTER TABLE ticket_pauses ADD COLUMN reasons text[] NOT NULL DEFAULT '{}';

CREATE TABLE engineers (
    id                text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9._-]*$'),
    name              text NOT NULL CHECK (name <> ''),
    email             text NOT NULL DEFAULT '',
    phone             text NOT NULL DEFAULT '',
    home_city         text NOT NULL CHECK (home_city <> ''),
    it                boolean NOT NULL DEFAULT false,
    biomedical        boolean NOT NULL DEFAULT false,
    modalities        text[] NOT NULL DEFAULT '{}',
    manufacturers     text[] NOT NULL DEFAULT '{}',
    -- A calendar preset (co-8x5…) or a calendar of its own (zone + hours).
    calendar_preset   text,
    calendar_config   jsonb,
    hourly_cost_cents bigint NOT NULL DEFAULT 0 CHECK (hourly_cost_cents >= 0), -- internal: never shown to customers
    active            boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    CHECK ((calendar_preset IS NULL) <> (calendar_config IS NULL))
);

-- On-call shifts make an engineer available outside working hours.
CREATE TABLE engineer_oncall (
    id          bigserial PRIMARY KEY,
    engineer_id text NOT NULL REFERENCES engineers (id),
    shift       tstzrange NOT NULL CHECK (NOT isempty(shift) AND NOT lower_inf(shift) AND NOT upper_inf(shift)),
    EXCLUDE USING gist (engineer_id WITH =, shift WITH &&)
);

CREATE TABLE visits (
    id                 bigserial PRIMARY KEY,
    ticket_id          bigint NOT NULL REFERENCES tickets (id),
    customer_id        text NOT NULL REFERENCES customers (id),
    site_id            text NOT NULL REFERENCES sites (id),
    device_ids         text[] NOT NULL DEFAULT '{}',
    purpose            text NOT NULL CHECK (purpose IN ('corrective', 'preventive')),
    state              text NOT NULL CHECK (state IN ('proposed', 'scheduled', 'en_route', 'on_site', 'done',
                           'equipment_unavailable', 'cancelled')),
    window_start       timestamptz,
    window_end         timestamptz,
    checklist_template text NOT NULL DEFAULT '',
    checklist          jsonb NOT NULL DEFAULT '[]',
    travel             boolean NOT NULL DEFAULT false, -- outside the lead engineer's home city: the customer pays (seed 004)
    travel_from        text NOT NULL DEFAULT '',
    travel_price_cents bigint NOT NULL DEFAULT 0 CHECK (travel_price_cents >= 0),
    notes              text NOT NULL DEFAULT '',
    rescheduled_from   bigint REFERENCES visits (id),
    without_quote      boolean NOT NULL DEFAULT false,
    en_route_at        timestamptz,
    arrived_at         timestamptz,
    left_at            timestamptz,
    work_performed     text NOT NULL DEFAULT '',
    parts_used         jsonb NOT NULL DEFAULT '[]',
    signer_name        text,
    signed_at          timestamptz,
    signature_kind     text CHECK (signature_kind IN ('drawn', 'typed')),
    signature          text, -- the typed name or a PNG data URL
    created_by         text NOT NULL,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    CHECK ((window_start IS NULL) = (window_end IS NULL)),
    CHECK (window_end > window_start),
    CHECK (state IN ('proposed', 'cancelled') OR window_start IS NOT NULL),
    CHECK (state <> 'done' OR (signed_at IS NOT NULL AND signer_name <> '' AND signature <> '' AND arrived_at IS NOT NULL)),
    CHECK (length(signature) <= 200000)
);
CREATE INDEX visits_ticket_idx ON visits (ticket_id);
CREATE INDEX visits_customer_idx ON visits (customer_id, id);
-- An unavailable-equipment visit is rescheduled once, however often the rule runs.
CREATE UNIQUE INDEX visits_one_reschedule ON visits (rescheduled_from) WHERE rescheduled_from IS NOT NULL;

CREATE TABLE visit_engineers (
    visit_id    bigint NOT NULL REFERENCES visits (id),
    engineer_id text NOT NULL REFERENCES engineers (id),
    lead        boolean NOT NULL DEFAULT false,
    -- The agreed window while the visit holds the engineer (scheduled, en
    -- route, on site); NULL otherwise.
    booked      tstzrange,
    PRIMARY KEY (visit_id, engineer_id),
    EXCLUDE USING gist (engineer_id WITH =, booked WITH &&) WHERE (booked IS NOT NULL)
);
CREATE UNIQUE INDEX visit_engineers_one_lead ON visit_engineers (visit_id) WHERE lead;
CREATE INDEX visit_engineers_engineer_idx ON visit_engineers (engineer_id);

CREATE TABLE visit_events (
    id         bigserial PRIMARY KEY,
    visit_id   bigint NOT NULL REFERENCES visits (id),
    at         timestamptz NOT NULL,
    author     text NOT NULL,
    from_state text NOT NULL,
    to_state   text NOT NULL,
    note       text NOT NULL DEFAULT ''
);
CREATE INDEX visit_events_visit_idx ON visit_events (visit_id, id);

-- Spare parts.
CREATE TABLE parts (
    id               bigserial PRIMARY KEY,
    manufacturer     text NOT NULL CHECK (manufacturer <> ''),
    part_number      text NOT NULL CHECK (part_number <> ''),
    description      text NOT NULL DEFAULT '',
    unit_cost_cents  bigint NOT NULL DEFAULT 0 CHECK (unit_cost_cents >= 0),  -- internal
    unit_price_cents bigint NOT NULL DEFAULT 0 CHECK (unit_price_cents >= 0), -- list price to customers
    created_at       timestamptz NOT NULL,
    UNIQUE (manufacturer, part_number)
);

CREATE TABLE warehouses (
    id   text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9._-]*$'),
    name text NOT NULL,
    city text NOT NULL DEFAULT ''
);

CREATE TABLE stock (
    warehouse_id text NOT NULL REFERENCES warehouses (id),
    part_id      bigint NOT NULL REFERENCES parts (id),
    quantity     integer NOT NULL CHECK (quantity >= 0), -- a withdrawal that would go negative fails here
    PRIMARY KEY (warehouse_id, part_id)
);

CREATE TABLE part_requests (
    id                bigserial PRIMARY KEY,
    ticket_id         bigint NOT NULL REFERENCES tickets (id),
    visit_id          bigint REFERENCES visits (id),
    part_id           bigint NOT NULL REFERENCES parts (id),
    quantity          integer NOT NULL CHECK (quantity > 0),
    state             text NOT NULL CHECK (state IN ('requested', 'quoted', 'approved', 'ordered', 'in_transit', 'in_customs',
                          'received', 'installed', 'cancelled')),
    quote_price_cents bigint CHECK (quote_price_cents >= 0), -- unit price quoted to the customer
    warehouse_id      text REFERENCES warehouses (id),          -- taken from this stock on receipt
    supplier_ref      text NOT NULL DEFAULT '',
    note              text NOT NULL DEFAULT '',
    requested_by      text NOT NULL,
    requested_at      timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);
CREATE INDEX part_requests_ticket_idx ON part_requests (ticket_id);

CREATE TABLE part_request_events (
    id         bigserial PRIMARY KEY,
    request_id bigint NOT NULL REFERENCES part_requests (id),
    at         timestamptz NOT NULL,
    author     text NOT NULL,
    from_state text NOT NULL,
    to_state   text NOT NULL,
    note       text NOT NULL DEFAULT ''
);

CREATE TABLE manufacturer_cases (
    id           bigserial PRIMARY KEY,
    ticket_id    bigint NOT NULL REFERENCES tickets (id),
    manufacturer text NOT NULL CHECK (manufacturer <> ''),
    case_number  text NOT NULL CHECK (case_number <> ''),
    state        text NOT NULL CHECK (state IN ('opened', 'waiting', 'answered', 'closed')),
    summary      text NOT NULL DEFAULT '',
    answer       text NOT NULL DEFAULT '',
    opened_by    text NOT NULL,
    opened_at    timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    UNIQUE (manufacturer, case_number)
);
CREATE INDEX manufacturer_cases_ticket_idx ON manufacturer_cases (ticket_id);

-- What holds each ticket. A part request or a manufacturer case has at
-- most one open wait; a manual wait (customer, third party) at most one per
-- ticket and reason. The ticket's SLA pause is derived from the open waits.
CREATE TABLE waits (
    id         bigserial PRIMARY KEY,
    ticket_id  bigint NOT NULL REFERENCES tickets (id),
    reason     text NOT NULL CHECK (reason IN ('customer', 'manufacturer', 'spare_parts', 'import', 'third_party')),
    source     text NOT NULL CHECK (source IN ('part_request', 'manufacturer_case', 'manual')),
    source_id  bigint,
    note       text NOT NULL DEFAULT '',
    started_at timestamptz NOT NULL,
    ended_at   timestamptz CHECK (ended_at >= started_at),
    started_by text NOT NULL,
    ended_by   text,
    CHECK ((source = 'manual') = (source_id IS NULL))
);
CREATE UNIQUE INDEX waits_one_open_per_source ON waits (source, source_id) WHERE ended_at IS NULL AND source_id IS NOT NULL;
CREATE UNIQUE INDEX waits_one_open_manual ON waits (ticket_id, reason) WHERE ended_at IS NULL AND source = 'manual';
CREATE INDEX waits_ticket_idx ON waits (ticket_id, started_at);

-- Billing.
-- Per-event work needs a quote the customer approved (seeds 001, 003).
CREATE TABLE quotes (
    id               bigserial PRIMARY KEY,
    ticket_id        bigint NOT NULL REFERENCES tickets (id),
    hours            integer NOT NULL CHECK (hours > 0),
    hour_price_cents bigint NOT NULL CHECK (hour_price_cents >= 0),
    state            text NOT NULL CHECK (state IN ('proposed', 'approved', 'rejected')),
    note             text NOT NULL DEFAULT '',
    created_by       text NOT NULL,
    created_at       timestamptz NOT NULL,
    decided_by       text,
    decided_at       timestamptz
);
CREATE INDEX quotes_ticket_idx ON quotes (ticket_id);

-- The customer caused the fault (seed 000 limits) or misused the system
-- (seed 000 §10): the ticket's work is billable even on a covered device.
CREATE TABLE billing_flags (
    ticket_id bigint PRIMARY KEY REFERENCES tickets (id),
    cause     text NOT NULL CHECK (cause IN ('customer_fault', 'misuse')),
    note      text NOT NULL DEFAULT '',
    set_by    text NOT NULL,
    set_at    timestamptz NOT NULL
);

CREATE TABLE work_entries (
    id          bigserial PRIMARY KEY,
    ticket_id   bigint NOT NULL REFERENCES tickets (id),
    visit_id    bigint REFERENCES visits (id),
    engineer_id text REFERENCES engineers (id),
    kind        text NOT NULL CHECK (kind IN ('remote', 'on_site')),
    activity    text NOT NULL DEFAULT '',
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz NOT NULL CHECK (ended_at > started_at),
    note        text NOT NULL DEFAULT '',
    mode        text NOT NULL CHECK (mode IN ('covered', 'hour_bank', 'billable')),
    unquoted    boolean NOT NULL DEFAULT false, -- billable work recorded without an approved quote: flagged
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL,
    UNIQUE (visit_id, engineer_id)              -- a finished visit records each engineer's time once
);
CREATE INDEX work_entries_ticket_idx ON work_entries (ticket_id);

-- Time taken from a contract's bank, per bank period: whole hours (in
-- minutes, multiples of 60) unless the bank allows fractions.
CREATE TABLE hour_bank_uses (
    id            bigserial PRIMARY KEY,
    contract_id   text NOT NULL REFERENCES contracts (id),
    period_start  date NOT NULL,
    period_end    date NOT NULL,
    work_entry_id bigint NOT NULL UNIQUE REFERENCES work_entries (id),
    minutes       integer NOT NULL CHECK (minutes > 0),
    at            timestamptz NOT NULL
);
CREATE INDEX hour_bank_uses_period_idx ON hour_bank_uses (contract_id, period_start);

CREATE TABLE billable_lines (
    id               bigserial PRIMARY KEY,
    customer_id      text NOT NULL REFERENCES customers (id),
    ticket_id        bigint NOT NULL REFERENCES tickets (id),
    source           text NOT NULL CHECK (source IN ('work', 'travel', 'part')),
    source_id        bigint NOT NULL,
    description      text NOT NULL,
    quantity         numeric(12, 2) NOT NULL CHECK (quantity > 0),
    unit_price_cents bigint NOT NULL CHECK (unit_price_cents >= 0),
    amount_cents     bigint NOT NULL CHECK (amount_cents >= 0),
    currency         text NOT NULL,
    reason           text NOT NULL,
    unquoted         boolean NOT NULL DEFAULT false,
    at               timestamptz NOT NULL,
    UNIQUE (source, source_id)
);
CREATE INDEX billable_lines_customer_idx ON billable_lines (customer_id, at);

-- +goose Down
DROP TABLE billable_lines, hour_bank_uses, work_entries, billing_flags, quotes, waits, manufacturer_cases,
    part_request_events, part_requests, stock, warehouses, parts, visit_events, visit_engineers, visits,
    engineer_oncall, engineers;
ALTER TABLE ticket_pauses DROP COLUMN reasons;
ALTER TABLE ticket_pauses DROP CONSTRAINT ticket_pauses_reason_check;
ALTER TABLE ticket_pauses ADD CONSTRAINT ticket_pauses_reason_check CHECK (reason IN ('customer', 'manufacturer', 'spare_parts', 'third_party'));
ALTER TABLE tickets DROP CONSTRAINT tickets_close_reason_check;
ALTER TABLE tickets ADD CONSTRAINT tickets_close_reason_check CHECK (close_reason IN ('confirmed', 'accepted_no_answer',
    'auto_closed', 'resolved', 'misuse', 'duplicate', 'cancelled'));
