-- +goose Up
-- Device state, its history, outages, and the durable events the ticketing
-- stage consumes. Everything that matters is a row: a restart recovers the
-- current state without re-declaring outages already open.

-- The current state of each device, with the counters of the state machine.
CREATE TABLE device_states (
    device_id             text PRIMARY KEY REFERENCES devices (id),
    state                 text NOT NULL CHECK (state IN ('up', 'degraded', 'down', 'unreachable', 'misconfigured', 'maintenance', 'unknown')),
    since                 timestamptz NOT NULL,
    consecutive_failures  integer NOT NULL DEFAULT 0,
    consecutive_successes integer NOT NULL DEFAULT 0,
    flapping              boolean NOT NULL DEFAULT false,
    recent_transitions    timestamptz[] NOT NULL DEFAULT '{}', -- for flap detection
    last_probe_at         timestamptz,
    last_uptime_seconds   bigint,       -- SNMP sysUpTime, for reboot detection
    last_detail           text NOT NULL DEFAULT '',
    updated_at            timestamptz NOT NULL
);

-- Every state transition, with the probe evidence that caused it.
CREATE TABLE device_transitions (
    id         bigserial PRIMARY KEY,
    device_id  text NOT NULL REFERENCES devices (id),
    from_state text NOT NULL,
    to_state   text NOT NULL,
    evidence   jsonb NOT NULL DEFAULT '{}',
    at         timestamptz NOT NULL
);
CREATE INDEX device_transitions_device_at_idx ON device_transitions (device_id, at);

-- An outage is a device down, or a whole site unreachable (its gateway down):
-- one site incident instead of one outage per device.
CREATE TABLE outages (
    id                  bigserial PRIMARY KEY,
    kind                text NOT NULL CHECK (kind IN ('device', 'site')),
    customer_id         text NOT NULL REFERENCES customers (id),
    site_id             text NOT NULL REFERENCES sites (id),
    device_id           text REFERENCES devices (id), -- the device down, or the site's gateway
    affected_device_ids text[] NOT NULL DEFAULT '{}', -- for a site incident: the devices made unreachable
    cause               text NOT NULL DEFAULT '',
    started_at          timestamptz NOT NULL,
    ended_at            timestamptz,
    CHECK (device_id IS NOT NULL OR kind = 'site')
);
-- At most one open outage per device and per site: a restart or a repeated
-- probe result cannot open a second one.
CREATE UNIQUE INDEX outages_one_open_per_device ON outages (device_id) WHERE ended_at IS NULL AND kind = 'device';
CREATE UNIQUE INDEX outages_one_open_per_site ON outages (site_id) WHERE ended_at IS NULL AND kind = 'site';

-- Durable events for the next stage of the flow (tickets, notifications).
-- The consumer claims unhandled rows with FOR UPDATE SKIP LOCKED, acts, and
-- sets handled_at in the same transaction: nothing lost, nothing twice.
CREATE TABLE device_events (
    id         bigserial PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('device_down', 'device_up', 'site_down', 'site_up', 'flapping_started', 'flapping_stopped', 'misconfigured', 'rebooted')),
    customer_id text NOT NULL REFERENCES customers (id),
    site_id    text NOT NULL REFERENCES sites (id),
    device_id  text REFERENCES devices (id),
    outage_id  bigint REFERENCES outages (id),
    detail     jsonb NOT NULL DEFAULT '{}',
    at         timestamptz NOT NULL,
    handled_at timestamptz
);
-- An outage opens and ends once.
CREATE UNIQUE INDEX device_events_once_per_outage ON device_events (outage_id, kind) WHERE outage_id IS NOT NULL;
CREATE INDEX device_events_unhandled_idx ON device_events (id) WHERE handled_at IS NULL;

-- Maintenance windows: devices inside keep being probed but raise no outage.
CREATE TABLE maintenance_windows (
    id          bigserial PRIMARY KEY,
    scope       text NOT NULL CHECK (scope IN ('device', 'site', 'customer')),
    scope_id    text NOT NULL,
    reason      text NOT NULL DEFAULT '',
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL CHECK (ends_at > starts_at),
    -- Recurring windows: a cron expression (in time_zone) for each start,
    -- lasting duration_seconds, between starts_at and ends_at.
    cron        text,
    time_zone   text,
    duration_seconds integer CHECK (duration_seconds > 0),
    created_by  text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((cron IS NULL) = (duration_seconds IS NULL))
);
CREATE INDEX maintenance_windows_scope_idx ON maintenance_windows (scope, scope_id);

-- Heartbeats received from devices and on-site agents.
CREATE TABLE heartbeats (
    device_id    text PRIMARY KEY REFERENCES devices (id),
    last_seen_at timestamptz NOT NULL,
    remote_addr  text NOT NULL DEFAULT ''
);

-- +goose Down
DROP TABLE heartbeats, maintenance_windows, device_events, outages, device_transitions, device_states;
