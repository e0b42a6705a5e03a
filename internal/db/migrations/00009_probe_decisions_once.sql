-- +goose Up
-- A decision made while PostgreSQL was down is written when it is back,
-- with the instant of the probe that made it; a retry after a COMMIT whose
-- answer was lost must then change nothing. A transition or an event
-- without an outage is unique by device, kind and instant (earlier
-- duplicates, from before this rule, are dropped first).
DELETE FROM device_transitions a USING device_transitions b
    WHERE a.device_id = b.device_id AND a.at = b.at AND a.to_state = b.to_state AND a.id > b.id;
CREATE UNIQUE INDEX device_transitions_once ON device_transitions (device_id, at, to_state);

DELETE FROM device_events a USING device_events b
    WHERE a.outage_id IS NULL AND b.outage_id IS NULL AND a.device_id = b.device_id AND a.kind = b.kind AND a.at = b.at
    AND a.id > b.id;
CREATE UNIQUE INDEX device_events_once_without_outage ON device_events (device_id, kind, at) WHERE outage_id IS NULL;

-- +goose Down
DROP INDEX device_events_once_without_outage;
DROP INDEX device_transitions_once;
