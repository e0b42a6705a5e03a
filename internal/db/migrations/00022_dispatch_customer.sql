-- +goose Up
-- Dispatch confines its rows to a customer (a customer's users see only
-- theirs) on its own tables instead of joining the ticket core's: the
-- ticket's customer is copied at insert from the ticket dispatch has just
-- locked through the ticket core, as visits and billable lines already do.
-- A ticket's customer never changes once it is opened, so the copy cannot
-- go stale.
ALTER TABLE part_requests ADD COLUMN customer_id text REFERENCES customers (id);
UPDATE part_requests r SET customer_id = t.customer_id FROM tickets t WHERE t.id = r.ticket_id;
ALTER TABLE part_requests ALTER COLUMN customer_id SET NOT NULL;
CREATE INDEX part_requests_customer_idx ON part_requests (customer_id, id);

ALTER TABLE manufacturer_cases ADD COLUMN customer_id text REFERENCES customers (id);
UPDATE manufacturer_cases c SET customer_id = t.customer_id FROM tickets t WHERE t.id = c.ticket_id;
ALTER TABLE manufacturer_cases ALTER COLUMN customer_id SET NOT NULL;
CREATE INDEX manufacturer_cases_customer_idx ON manufacturer_cases (customer_id, id);

ALTER TABLE waits ADD COLUMN customer_id text REFERENCES customers (id);
UPDATE waits w SET customer_id = t.customer_id FROM tickets t WHERE t.id = w.ticket_id;
ALTER TABLE waits ALTER COLUMN customer_id SET NOT NULL;
CREATE INDEX waits_open_customer_idx ON waits (customer_id, started_at) WHERE ended_at IS NULL;

ALTER TABLE work_entries ADD COLUMN customer_id text REFERENCES customers (id);
UPDATE work_entries w SET customer_id = t.customer_id FROM tickets t WHERE t.id = w.ticket_id;
ALTER TABLE work_entries ALTER COLUMN customer_id SET NOT NULL;
CREATE INDEX work_entries_customer_idx ON work_entries (customer_id, ended_at);

-- +goose Down
ALTER TABLE work_entries DROP COLUMN customer_id;
ALTER TABLE waits DROP COLUMN customer_id;
ALTER TABLE manufacturer_cases DROP COLUMN customer_id;
ALTER TABLE part_requests DROP COLUMN customer_id;
