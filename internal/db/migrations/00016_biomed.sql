-- +goose Up
-- Biomedical vigilance (issue #22): maintenance programmes by the
-- manufacturer's book, their work orders, electrical safety test records,
-- calibration, and safety alerts matched to the installed base.

-- Written by assets only (SetOperationalStatusTx): a device taken out of
-- service (a failed safety test) is still in the inventory and still
-- probed, but raises no outage while it is out (probes shows it as
-- maintenance).
ALTER TABLE devices ADD COLUMN operational_status text NOT NULL DEFAULT 'in_service'
    CHECK (operational_status IN ('in_service', 'out_of_service'));
ALTER TABLE devices ADD COLUMN operational_reason text NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN operational_since timestamptz;

-- Tickets opened by the biomedical service (failed test, safety alert,
-- calibration overdue).
ALTER TABLE tickets DROP CONSTRAINT tickets_source_check;
ALTER TABLE tickets ADD CONSTRAINT tickets_source_check
    CHECK (source IN ('probe', 'portal', 'api', 'alertmanager', 'preventive', 'email', 'biomed'));

-- Everything below is written by package biomed only.

-- A programme applies to every device of a manufacturer and model, or
-- (device_id set) to one device, replacing the model's programme there.
CREATE TABLE biomed_programmes (
    id           text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9._-]*$'),
    manufacturer text NOT NULL DEFAULT '',
    model        text NOT NULL DEFAULT '',
    device_id    text REFERENCES devices (id),
    starts_on    date NOT NULL,
    tasks        jsonb NOT NULL,
    source       text NOT NULL DEFAULT '',
    updated_at   timestamptz NOT NULL,
    CHECK ((device_id IS NULL) = (manufacturer <> '' AND model <> ''))
);
CREATE UNIQUE INDEX biomed_programmes_one_per_model ON biomed_programmes (lower(manufacturer), lower(model)) WHERE device_id IS NULL;
CREATE UNIQUE INDEX biomed_programmes_one_per_device ON biomed_programmes (device_id) WHERE device_id IS NOT NULL;

-- One work order per device, task and due date, whatever re-imports and
-- concurrent sweeps do. The ticket (and its maintenance window) opens
-- when the lead time begins.
CREATE TABLE biomed_work_orders (
    id            bigserial PRIMARY KEY,
    customer_id   text NOT NULL REFERENCES customers (id),
    device_id     text NOT NULL REFERENCES devices (id),
    programme_id  text NOT NULL REFERENCES biomed_programmes (id),
    task_id       text NOT NULL,
    title_es      text NOT NULL,
    title_en      text NOT NULL,
    due_on        date NOT NULL,
    lead_days     integer NOT NULL CHECK (lead_days BETWEEN 0 AND 180),
    duration_minutes integer NOT NULL CHECK (duration_minutes > 0),
    skills        text[] NOT NULL DEFAULT '{}',
    checklist     text[] NOT NULL DEFAULT '{}',
    usage_counter text NOT NULL DEFAULT '',
    usage_value   numeric,
    ticket_id     bigint REFERENCES tickets (id),
    window_id     bigint REFERENCES maintenance_windows (id),
    opened_at     timestamptz,
    created_at    timestamptz NOT NULL,
    UNIQUE (device_id, programme_id, task_id, due_on)
);
CREATE INDEX biomed_work_orders_to_open ON biomed_work_orders (due_on) WHERE ticket_id IS NULL;
CREATE INDEX biomed_work_orders_customer ON biomed_work_orders (customer_id, due_on);

-- Usage counters (tube hours, exam counts) recorded by an engineer or a probe.
CREATE TABLE biomed_usage (
    device_id   text NOT NULL REFERENCES devices (id),
    counter     text NOT NULL CHECK (counter ~ '^[a-z][a-z0-9_]{0,39}$'),
    value       numeric NOT NULL CHECK (value >= 0),
    read_at     timestamptz NOT NULL,
    recorded_by text NOT NULL,
    PRIMARY KEY (device_id, counter, read_at)
);

-- IEC 62353 test records, each attached to the visit it was made on.
CREATE TABLE biomed_safety_tests (
    id                bigserial PRIMARY KEY,
    visit_id          bigint NOT NULL REFERENCES visits (id),
    device_id         text NOT NULL REFERENCES devices (id),
    customer_id       text NOT NULL REFERENCES customers (id),
    test_type         text NOT NULL CHECK (test_type IN ('recurrent', 'after_repair')),
    device_class      text NOT NULL CHECK (device_class IN ('I', 'II')),
    applied_part      text NOT NULL CHECK (applied_part IN ('none', 'B', 'BF', 'CF')),
    method            text NOT NULL CHECK (method IN ('direct', 'alternative', 'differential')),
    instrument_model  text NOT NULL,
    instrument_serial text NOT NULL,
    instrument_calibrated_on date NOT NULL,
    accessories       text[] NOT NULL DEFAULT '{}',
    measurements      jsonb NOT NULL,
    passed            boolean NOT NULL,
    limits_version    text NOT NULL,
    ticket_id         bigint REFERENCES tickets (id),
    recorded_by       text NOT NULL,
    tested_at         timestamptz NOT NULL,
    UNIQUE (visit_id, device_id, test_type)
);
CREATE INDEX biomed_safety_tests_customer ON biomed_safety_tests (customer_id, tested_at);

-- Devices the customer flagged as measuring instruments to calibrate.
CREATE TABLE biomed_calibration_plans (
    device_id          text PRIMARY KEY REFERENCES devices (id),
    customer_id        text NOT NULL REFERENCES customers (id),
    every_months       integer NOT NULL CHECK (every_months BETWEEN 1 AND 60),
    first_due_on       date NOT NULL,
    alerted_due_on     date, -- the due date an overdue ticket was opened for
    alert_ticket_id    bigint REFERENCES tickets (id),
    updated_at         timestamptz NOT NULL
);

CREATE TABLE biomed_calibrations (
    id                bigserial PRIMARY KEY,
    device_id         text NOT NULL REFERENCES biomed_calibration_plans (device_id),
    customer_id       text NOT NULL REFERENCES customers (id),
    calibrated_on     date NOT NULL,
    next_due_on       date NOT NULL CHECK (next_due_on > calibrated_on),
    laboratory        text NOT NULL,
    certificate_number text NOT NULL,
    filename          text NOT NULL,
    content_type      text NOT NULL,
    data              bytea NOT NULL,
    sha256            bytea NOT NULL,
    recorded_by       text NOT NULL,
    recorded_at       timestamptz NOT NULL,
    UNIQUE (device_id, calibrated_on)
);

-- Safety alerts and recalls (INVIMA, DIGEMID, FDA, the manufacturer…).
CREATE TABLE biomed_alerts (
    id           bigserial PRIMARY KEY,
    source       text NOT NULL,
    reference    text NOT NULL,
    issued_on    date NOT NULL,
    manufacturer text NOT NULL,
    models       text[] NOT NULL,
    serials      jsonb NOT NULL,
    patient_risk boolean NOT NULL,
    action       text NOT NULL,
    imported_at  timestamptz NOT NULL,
    UNIQUE (source, reference)
);

CREATE TABLE biomed_alert_matches (
    alert_id    bigint NOT NULL REFERENCES biomed_alerts (id),
    device_id   text NOT NULL REFERENCES devices (id),
    customer_id text NOT NULL REFERENCES customers (id),
    ticket_id   bigint NOT NULL REFERENCES tickets (id),
    matched_at  timestamptz NOT NULL,
    PRIMARY KEY (alert_id, device_id)
);
CREATE INDEX biomed_alert_matches_customer ON biomed_alert_matches (customer_id);

-- +goose Down
DROP TABLE biomed_alert_matches, biomed_alerts, biomed_calibrations, biomed_calibration_plans, biomed_safety_tests,
    biomed_usage, biomed_work_orders, biomed_programmes;
ALTER TABLE tickets DROP CONSTRAINT tickets_source_check;
ALTER TABLE tickets ADD CONSTRAINT tickets_source_check CHECK (source IN ('probe', 'portal', 'api', 'alertmanager', 'preventive', 'email'));
ALTER TABLE devices DROP COLUMN operational_since, DROP COLUMN operational_reason, DROP COLUMN operational_status;
