-- +goose Up
-- Several `vigia serve` share the probing: devices are hashed into shards,
-- and each shard is leased by one live instance. A dead instance's leases
-- expire and are taken over; times are the database's, so instances'
-- clocks never disagree about who owns what.
CREATE TABLE probe_instances (
    id           text PRIMARY KEY,
    hostname     text NOT NULL DEFAULT '',
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE probe_leases (
    shard      integer PRIMARY KEY CHECK (shard >= 0),
    owner      text,
    expires_at timestamptz NOT NULL DEFAULT '-infinity'
);

-- +goose Down
DROP TABLE probe_leases, probe_instances;
