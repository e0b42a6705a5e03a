-- +goose Up
-- SNMP traps and informs heard from devices, the conditions they leave
-- standing (an interface down, a UPS on battery), and the hrStorage samples
-- behind each volume's "full in N days" trend (issue 19). All owned by
-- probes; the tickets they lead to come through device_events as always.

-- Every trap or inform accepted from a known device, with the rule that
-- matched it. Refused ones (unknown sender, wrong community or user) are
-- only counted: a stranger must not be able to fill a table.
CREATE TABLE device_traps (
    id          bigserial PRIMARY KEY,
    device_id   text NOT NULL REFERENCES devices (id),
    customer_id text NOT NULL REFERENCES customers (id),
    site_id     text NOT NULL REFERENCES sites (id),
    at          timestamptz NOT NULL,
    source      text NOT NULL,             -- address:port it came from
    version     text NOT NULL CHECK (version IN ('v1', 'v2c', 'v3')),
    inform      boolean NOT NULL,
    trap_oid    text NOT NULL,
    rule        text NOT NULL,             -- the matching rule's name
    effect      text NOT NULL CHECK (effect IN ('interface_down', 'interface_up', 'reboot', 'set', 'clear', 'record')),
    condition   text NOT NULL DEFAULT '',  -- 'interface:eth1', 'ups_on_battery'…
    varbinds    jsonb NOT NULL DEFAULT '[]'
);
CREATE INDEX device_traps_device_at_idx ON device_traps (device_id, at);

-- Conditions a trap set and a later trap clears: while one stands its
-- device is degraded (degrade) and, with a severity, has a ticket open.
CREATE TABLE device_trap_conditions (
    device_id text NOT NULL REFERENCES devices (id),
    condition text NOT NULL,
    since     timestamptz NOT NULL,
    detail    text NOT NULL DEFAULT '',
    degrade   boolean NOT NULL,
    severity  integer CHECK (severity BETWEEN 1 AND 4),
    PRIMARY KEY (device_id, condition)
);

-- hrStorage fixed-disk readings, at most one per volume per sampling step:
-- what the least-squares trend is fitted to.
CREATE TABLE storage_samples (
    device_id  text NOT NULL REFERENCES devices (id),
    volume     text NOT NULL,
    at         timestamptz NOT NULL,
    used_bytes bigint NOT NULL CHECK (used_bytes >= 0),
    size_bytes bigint NOT NULL CHECK (size_bytes > 0),
    PRIMARY KEY (device_id, volume, at)
);

-- The last verdict on each volume's trend, so that storage_trend events are
-- published once per change (filling starts, its rounded days or severity
-- change, it stops), across restarts and instances.
CREATE TABLE storage_trends (
    device_id  text NOT NULL REFERENCES devices (id),
    volume     text NOT NULL,
    filling    boolean NOT NULL,
    full_at    timestamptz,
    days       integer,
    severity   integer CHECK (severity BETWEEN 1 AND 4),
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (device_id, volume),
    CHECK (NOT filling OR (full_at IS NOT NULL AND days IS NOT NULL AND severity IS NOT NULL))
);

-- The kinds issue 19 adds, and the worklist ones of migration 00010, so that
-- whichever of the two runs last leaves every kind allowed.
ALTER TABLE device_events DROP CONSTRAINT device_events_kind_check;
ALTER TABLE device_events ADD CONSTRAINT device_events_kind_check CHECK (kind IN ('device_down', 'device_up', 'site_down', 'site_up',
    'flapping_started', 'flapping_stopped', 'misconfigured', 'rebooted', 'worklist_failing', 'worklist_restored',
    'trap_alarm', 'trap_cleared', 'storage_trend'));

-- +goose Down
DELETE FROM device_events WHERE kind IN ('trap_alarm', 'trap_cleared', 'storage_trend');
ALTER TABLE device_events DROP CONSTRAINT device_events_kind_check;
ALTER TABLE device_events ADD CONSTRAINT device_events_kind_check CHECK (kind IN ('device_down', 'device_up', 'site_down', 'site_up',
    'flapping_started', 'flapping_stopped', 'misconfigured', 'rebooted', 'worklist_failing', 'worklist_restored'));
DROP TABLE storage_trends, storage_samples, device_trap_conditions, device_traps;
