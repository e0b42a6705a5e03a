-- +goose Up
-- Field dispatch from the console (issue 18): the engineer's language for
-- their dispatch e-mail, the calendar invitation's SEQUENCE per visit, the
-- expected arrival of an ordered or imported part, the warehouse an
-- engineer carries (their van stock), and photos taken on a visit, kept
-- with the ticket's attachments under the same limits.

ALTER TABLE engineers ADD COLUMN language text NOT NULL DEFAULT 'es' CHECK (language IN ('es', 'en'));
ALTER TABLE engineers ADD COLUMN warehouse_id text REFERENCES warehouses (id);

-- RFC 5545 §3.8.7.4: bumped each time the agreed window changes, so
-- calendars replace the earlier invitation (same UID) instead of adding one.
ALTER TABLE visits ADD COLUMN ical_sequence integer NOT NULL DEFAULT 0 CHECK (ical_sequence >= 0);

ALTER TABLE part_requests ADD COLUMN eta date;

ALTER TABLE ticket_attachments ADD COLUMN visit_id bigint REFERENCES visits (id);
CREATE INDEX ticket_attachments_visit_idx ON ticket_attachments (visit_id, id) WHERE visit_id IS NOT NULL;

-- +goose Down
DROP INDEX ticket_attachments_visit_idx;
ALTER TABLE ticket_attachments DROP COLUMN visit_id;
ALTER TABLE part_requests DROP COLUMN eta;
ALTER TABLE visits DROP COLUMN ical_sequence;
ALTER TABLE engineers DROP COLUMN warehouse_id, DROP COLUMN language;
