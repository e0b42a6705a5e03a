-- +goose Up
-- SLA marks (warnings, escalations, breaches) recorded once, and preventive
-- maintenance plans whose visits open one work order each.

-- Every SLA instant a ticket passed, once: the unique key makes a repeated
-- or concurrent sweep, or a restart, a no-op. level is the escalation level
-- (2, 3…) for kind escalation and 0 otherwise. A severity change that
-- restarts a clock does not record a second breach of the same clock: the
-- first one stays the record.
CREATE TABLE sla_marks (
    id          bigserial PRIMARY KEY,
    ticket_id   bigint NOT NULL REFERENCES tickets (id),
    clock       text NOT NULL CHECK (clock IN ('response', 'resolution')),
    kind        text NOT NULL CHECK (kind IN ('warning', 'escalation', 'breach')),
    level       integer NOT NULL DEFAULT 0 CHECK ((kind = 'escalation') = (level > 0)),
    instant     timestamptz NOT NULL,  -- the SLA instant that was passed
    customer_id text NOT NULL REFERENCES customers (id),
    sla_policy  text NOT NULL,
    severity    integer NOT NULL CHECK (severity BETWEEN 1 AND 4),
    recorded_at timestamptz NOT NULL,
    UNIQUE (ticket_id, clock, kind, level)
);
CREATE INDEX sla_marks_customer_idx ON sla_marks (customer_id, recorded_at);

-- Preventive maintenance plans (issue 5 point 10): a visit to a device
-- every every_months months from anchor_on, the work order opened
-- lead_days before the visit day.
CREATE TABLE preventive_plans (
    id           bigserial PRIMARY KEY,
    customer_id  text NOT NULL REFERENCES customers (id),
    device_id    text NOT NULL REFERENCES devices (id),
    title        text NOT NULL,
    checklist    text NOT NULL DEFAULT '',
    every_months integer NOT NULL CHECK (every_months BETWEEN 1 AND 60),
    lead_days    integer NOT NULL CHECK (lead_days BETWEEN 0 AND 180),
    anchor_on    date NOT NULL,             -- the first visit; the n-th is anchor_on + n × every_months
    next_seq     integer NOT NULL DEFAULT 0, -- the occurrence next_due_on stands for
    next_due_on  date NOT NULL,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL,
    retired_at   timestamptz
);
CREATE INDEX preventive_plans_due_idx ON preventive_plans (next_due_on) WHERE retired_at IS NULL;
CREATE INDEX preventive_plans_customer_idx ON preventive_plans (customer_id, id);

-- One work order and one maintenance window per plan occurrence.
CREATE TABLE preventive_visits (
    plan_id   bigint NOT NULL REFERENCES preventive_plans (id),
    seq       integer NOT NULL,
    due_on    date NOT NULL,
    ticket_id bigint NOT NULL REFERENCES tickets (id),
    window_id bigint NOT NULL REFERENCES maintenance_windows (id),
    opened_at timestamptz NOT NULL,
    PRIMARY KEY (plan_id, seq)
);

-- +goose Down
DROP TABLE preventive_visits, preventive_plans, sla_marks;
