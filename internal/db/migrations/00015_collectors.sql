-- +goose Up
-- Collectors: `vigia collect` processes inside hospitals' networks that
-- probe their sites' devices and push the results to the NOC. Only the
-- SHA-256 of a collector's token is stored (it carries 256 random bits).
CREATE TABLE collectors (
    id              bigserial PRIMARY KEY,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    customer_id     text NOT NULL REFERENCES customers (id),
    token_sha256    bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    created_at      timestamptz NOT NULL,
    revoked_at      timestamptz,
    last_contact_at timestamptz,          -- its last authenticated request
    last_seq        bigint NOT NULL DEFAULT 0 CHECK (last_seq >= 0), -- the highest sequence applied
    last_result_at  timestamptz,          -- the probe instant of the newest result applied
    lost_at         timestamptz,          -- set while it is silent past its grace
    results_applied bigint NOT NULL DEFAULT 0,
    results_refused bigint NOT NULL DEFAULT 0, -- results for devices outside its sites
    results_missing bigint NOT NULL DEFAULT 0  -- sequence gaps: results its queue dropped
);

-- The sites a collector probes; a site has one collector at most.
CREATE TABLE collector_sites (
    collector_id bigint NOT NULL REFERENCES collectors (id),
    site_id      text NOT NULL UNIQUE REFERENCES sites (id),
    PRIMARY KEY (collector_id, site_id)
);

-- Every result applied, by its collector's sequence number: a batch
-- pushed twice (its answer lost, a crash mid-ingest) applies once. The
-- row is written in the transaction that applies the result.
CREATE TABLE collector_results (
    collector_id bigint NOT NULL REFERENCES collectors (id),
    seq          bigint NOT NULL CHECK (seq > 0),
    device_id    text NOT NULL REFERENCES devices (id),
    outcome      text NOT NULL,
    at           timestamptz NOT NULL,
    applied_at   timestamptz NOT NULL,
    PRIMARY KEY (collector_id, seq)
);
CREATE INDEX collector_results_applied_idx ON collector_results (applied_at);

-- A collector's loss is its own incident: monitoring_lost and
-- monitoring_restored events. The kinds are added to whatever list the
-- constraint holds now, so migrations of other features adding kinds
-- merge in any order.
-- +goose StatementBegin
DO $$
DECLARE
    kinds text[];
BEGIN
    SELECT array_agg(DISTINCT m[1]) INTO kinds
        FROM pg_constraint c, regexp_matches(pg_get_constraintdef(c.oid), '''([a-z_]+)''', 'g') AS m
        WHERE c.conname = 'device_events_kind_check';
    kinds := array(SELECT DISTINCT unnest(kinds || ARRAY['monitoring_lost', 'monitoring_restored']));
    ALTER TABLE device_events DROP CONSTRAINT device_events_kind_check;
    EXECUTE format('ALTER TABLE device_events ADD CONSTRAINT device_events_kind_check CHECK (kind = ANY (%L::text[]))', kinds);
END
$$;
-- +goose StatementEnd

-- A ticket for the NOC alone (a collector lost): the hospital neither sees
-- it nor is notified of it.
ALTER TABLE tickets ADD COLUMN noc_only boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE tickets DROP COLUMN noc_only;
DELETE FROM device_events WHERE kind IN ('monitoring_lost', 'monitoring_restored');
DROP TABLE collector_results, collector_sites, collectors;
