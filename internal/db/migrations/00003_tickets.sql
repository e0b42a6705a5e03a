-- +goose Up
-- Tickets, their timeline, SLA pauses and severity changes, the pre-closure
-- contact tasks, and the notification outbox. Every rule that must hold
-- across restarts and concurrent instances is a constraint here.

-- Where a hospital's notifications go (comma-separated addresses; empty:
-- none). Set by the inventory importer.
ALTER TABLE customers ADD COLUMN notify_email text NOT NULL DEFAULT '';

-- Human-readable numbers: VG-2026-000042, one sequence per year. The row
-- lock on the year serialises numbering; a rolled-back opening frees its
-- number with it.
CREATE TABLE ticket_counters (
    year integer PRIMARY KEY,
    last integer NOT NULL
);

CREATE TABLE tickets (
    id                 bigserial PRIMARY KEY,
    number             text NOT NULL UNIQUE,
    customer_id        text NOT NULL REFERENCES customers (id),
    site_id            text REFERENCES sites (id),
    device_ids         text[] NOT NULL DEFAULT '{}',
    title              text NOT NULL,
    description        text NOT NULL DEFAULT '',
    category           text NOT NULL DEFAULT '',
    requester          text NOT NULL DEFAULT '',
    severity           integer NOT NULL CHECK (severity BETWEEN 1 AND 4),
    opened_severity    integer NOT NULL CHECK (opened_severity BETWEEN 1 AND 4),
    source             text NOT NULL CHECK (source IN ('probe', 'portal', 'api', 'alertmanager', 'preventive')),
    status             text NOT NULL CHECK (status IN ('new', 'acknowledged', 'in_progress', 'pending', 'solved', 'closed', 'reopened')),
    pending_reason     text,
    assignee           text NOT NULL DEFAULT '',
    billable           boolean NOT NULL,
    billable_reason    text NOT NULL,
    contract_id        text REFERENCES contracts (id),
    sla_policy         text NOT NULL,
    -- Automatic tickets (probes, Alertmanager) carry the subject they are
    -- about, "device:ID" or "site:ID": at most one open ticket per subject.
    auto_key           text,
    previous_ticket_id bigint REFERENCES tickets (id),
    opened_at          timestamptz NOT NULL,
    acknowledged_at    timestamptz,  -- first human acknowledgement: the response
    solved_at          timestamptz,
    solve_round        integer NOT NULL DEFAULT 0, -- pre-closure tasks belong to one solution
    closed_at          timestamptz,
    close_reason       text CHECK (close_reason IN ('confirmed', 'accepted_no_answer', 'auto_closed', 'resolved', 'misuse', 'duplicate', 'cancelled')),
    kb_links           text[] NOT NULL DEFAULT '{}', -- knowledge-base material sent on a misuse closure
    -- A cache of what maintenance/sla computes from the rows below,
    -- rewritten in the same transaction as every change that affects it.
    response_due_at    timestamptz,
    response_warn_at   timestamptz,
    resolution_due_at  timestamptz,
    report_due_at      timestamptz,
    created_by         text NOT NULL,
    updated_at         timestamptz NOT NULL,
    CHECK ((status = 'closed') = (closed_at IS NOT NULL)),
    CHECK ((status = 'pending') = (pending_reason IS NOT NULL))
);
CREATE UNIQUE INDEX tickets_one_open_per_subject ON tickets (auto_key) WHERE closed_at IS NULL AND auto_key IS NOT NULL;
CREATE INDEX tickets_customer_idx ON tickets (customer_id, id);
CREATE INDEX tickets_auto_key_idx ON tickets (auto_key, id) WHERE auto_key IS NOT NULL;

-- Which ticket each outage went to: an outage opens or joins one ticket, once.
CREATE TABLE ticket_outages (
    outage_id   bigint PRIMARY KEY REFERENCES outages (id),
    ticket_id   bigint NOT NULL REFERENCES tickets (id),
    attached_at timestamptz NOT NULL
);
CREATE INDEX ticket_outages_ticket_idx ON ticket_outages (ticket_id);

-- Alertmanager alerts received, once per (fingerprint, startsAt).
CREATE TABLE ticket_alerts (
    fingerprint text NOT NULL,
    starts_at   timestamptz NOT NULL,
    ticket_id   bigint NOT NULL REFERENCES tickets (id),
    alertname   text NOT NULL DEFAULT '',
    received_at timestamptz NOT NULL,
    resolved_at timestamptz,
    PRIMARY KEY (fingerprint, starts_at)
);

-- The timeline: every change, with its author.
CREATE TABLE ticket_events (
    id        bigserial PRIMARY KEY,
    ticket_id bigint NOT NULL REFERENCES tickets (id),
    at        timestamptz NOT NULL,
    author    text NOT NULL,
    kind      text NOT NULL,
    text      text NOT NULL DEFAULT '',
    data      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX ticket_events_ticket_idx ON ticket_events (ticket_id, id);

-- SLA pauses (seed 000, seed 003): waiting on the customer, a manufacturer,
-- spare parts or a third party. At most one running pause per ticket.
CREATE TABLE ticket_pauses (
    id         bigserial PRIMARY KEY,
    ticket_id  bigint NOT NULL REFERENCES tickets (id),
    reason     text NOT NULL CHECK (reason IN ('customer', 'manufacturer', 'spare_parts', 'third_party')),
    note       text NOT NULL DEFAULT '',
    started_at timestamptz NOT NULL,
    ended_at   timestamptz CHECK (ended_at >= started_at),
    started_by text NOT NULL,
    ended_by   text
);
CREATE UNIQUE INDEX ticket_pauses_one_running ON ticket_pauses (ticket_id) WHERE ended_at IS NULL;

CREATE TABLE ticket_severity_changes (
    id         bigserial PRIMARY KEY,
    ticket_id  bigint NOT NULL REFERENCES tickets (id),
    at         timestamptz NOT NULL,
    from_severity integer NOT NULL,
    to_severity   integer NOT NULL CHECK (to_severity BETWEEN 1 AND 4),
    reason     text NOT NULL DEFAULT '',
    author     text NOT NULL
);
CREATE INDEX ticket_severity_changes_ticket_idx ON ticket_severity_changes (ticket_id);

-- Misuse (seed 000 §10): the same category from the same requester of the
-- same customer is refused after a ticket was closed as misuse.
CREATE TABLE misuse_blocks (
    customer_id text NOT NULL REFERENCES customers (id),
    requester   text NOT NULL,
    category    text NOT NULL,
    ticket_id   bigint NOT NULL REFERENCES tickets (id),
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (customer_id, requester, category)
);

-- Pre-closure protocol: each contact attempt (and the final closing) is a
-- row scheduled when the ticket is solved, so it survives restarts. Rows of
-- a solution the customer rejected are cancelled, not deleted.
CREATE TABLE closure_tasks (
    id           bigserial PRIMARY KEY,
    ticket_id    bigint NOT NULL REFERENCES tickets (id),
    round        integer NOT NULL,
    seq          integer NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('call', 'email', 'contact', 'close', 'end')),
    due_at       timestamptz NOT NULL,
    done_at      timestamptz,
    cancelled_at timestamptz,
    UNIQUE (ticket_id, round, seq)
);
CREATE INDEX closure_tasks_due_idx ON closure_tasks (due_at) WHERE done_at IS NULL AND cancelled_at IS NULL;

-- The notification outbox. The row is the truth: it is written in the same
-- transaction as the change it announces, and marked sent in the
-- transaction that holds its lock while sending.
CREATE TABLE outbox (
    id              bigserial PRIMARY KEY,
    event_key       text NOT NULL,
    channel         text NOT NULL CHECK (channel IN ('email', 'webhook')),
    recipient       text NOT NULL,
    ticket_id       bigint REFERENCES tickets (id),
    subject         text NOT NULL DEFAULT '',
    body            text NOT NULL DEFAULT '',
    payload         jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text NOT NULL DEFAULT '',
    sent_at         timestamptz,
    UNIQUE (event_key, channel, recipient)
);
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at, id) WHERE sent_at IS NULL;

-- +goose Down
DROP TABLE outbox, closure_tasks, misuse_blocks, ticket_severity_changes, ticket_pauses, ticket_events,
    ticket_alerts, ticket_outages, tickets, ticket_counters;
ALTER TABLE customers DROP COLUMN notify_email;
