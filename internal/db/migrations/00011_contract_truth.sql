-- +goose Up
-- Contract truth (issue 16): every response and resolution clock ends in a
-- recorded outcome, and a clock restarted by a severity change is a clock
-- of its own, whose breach is recorded again.

-- restart_at is the severity change that restarted the clock (grace);
-- -infinity for the clock that started with the ticket. Marks of a
-- restarted clock are new marks, recorded once each like the first ones.
ALTER TABLE sla_marks ADD COLUMN restart_at timestamptz NOT NULL DEFAULT '-infinity';
ALTER TABLE sla_marks DROP CONSTRAINT sla_marks_ticket_id_clock_kind_level_key;
ALTER TABLE sla_marks ADD CONSTRAINT sla_marks_once UNIQUE (ticket_id, clock, kind, level, restart_at);

-- How each clock ended: met (margin_seconds ≥ 0 before the due instant) or
-- breached (margin_seconds < 0: the lateness). One row per clock, written
-- once by the SLA watcher when the clock stops.
CREATE TABLE sla_outcomes (
    id             bigserial PRIMARY KEY,
    ticket_id      bigint NOT NULL REFERENCES tickets (id),
    clock          text NOT NULL CHECK (clock IN ('response', 'resolution')),
    restart_at     timestamptz NOT NULL DEFAULT '-infinity',
    outcome        text NOT NULL CHECK (outcome IN ('met', 'breached')),
    due_at         timestamptz NOT NULL,
    stopped_at     timestamptz NOT NULL,
    margin_seconds bigint NOT NULL,
    customer_id    text NOT NULL REFERENCES customers (id),
    sla_policy     text NOT NULL,
    severity       integer NOT NULL CHECK (severity BETWEEN 1 AND 4),
    recorded_at    timestamptz NOT NULL,
    CHECK ((outcome = 'met') = (margin_seconds >= 0)),
    UNIQUE (ticket_id, clock, restart_at)
);
CREATE INDEX sla_outcomes_customer_idx ON sla_outcomes (customer_id, stopped_at);

-- +goose Down
DROP TABLE sla_outcomes;
DELETE FROM sla_marks WHERE restart_at <> '-infinity';
ALTER TABLE sla_marks DROP CONSTRAINT sla_marks_once;
ALTER TABLE sla_marks ADD CONSTRAINT sla_marks_ticket_id_clock_kind_level_key UNIQUE (ticket_id, clock, kind, level);
ALTER TABLE sla_marks DROP COLUMN restart_at;
