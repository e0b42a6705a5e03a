-- +goose Up
-- E-mail intake (issue #17): who writes for a customer, every message read
-- from a mailbox with its raw text, and the Message-IDs of what Vigía
-- sends, so that replies find their ticket.

-- A sender matches a contact, else one of the customer's domains.
ALTER TABLE customers ADD COLUMN email_domains text[] NOT NULL DEFAULT '{}';

-- Written by the inventory importer. An address belongs to one customer.
CREATE TABLE customer_contacts (
    customer_id text NOT NULL REFERENCES customers (id),
    email       text NOT NULL UNIQUE CHECK (email = lower(email) AND email LIKE '_%@_%'),
    name        text NOT NULL DEFAULT '',
    phone       text NOT NULL DEFAULT '',
    role        text NOT NULL DEFAULT '',
    language    text NOT NULL CHECK (language IN ('es', 'en')),
    PRIMARY KEY (customer_id, email)
);

ALTER TABLE tickets DROP CONSTRAINT tickets_source_check;
ALTER TABLE tickets ADD CONSTRAINT tickets_source_check CHECK (source IN ('probe', 'portal', 'api', 'alertmanager', 'preventive', 'email'));

-- Every outgoing message carries the Message-ID of its row: stable for the
-- row (a re-send after a lost commit repeats it) and recognisable in a
-- reply's In-Reply-To/References. A bounce naming it marks the delivery
-- to that recipient failed.
ALTER TABLE outbox ADD COLUMN message_id text GENERATED ALWAYS AS ('<outbox.' || id::text || '@vigia>') STORED;
CREATE UNIQUE INDEX outbox_message_id ON outbox (message_id);
ALTER TABLE outbox ADD COLUMN bounced_at timestamptz;
ALTER TABLE outbox ADD COLUMN bounce_reason text NOT NULL DEFAULT '';

-- Every message read from a mailbox, raw, written in the transaction that
-- acts on it (opens the ticket, adds the comment), before the message is
-- flagged \Seen and archived: a crash in between finds the row and does
-- nothing twice. One row per Message-ID, and per mailbox UID for messages
-- without one.
CREATE TABLE inbound_mail (
    id           bigserial PRIMARY KEY,
    mailbox      text NOT NULL,   -- imap://user@host:port/MAILBOX, no secret
    uid_validity bigint NOT NULL,
    uid          bigint NOT NULL,
    message_id   text CHECK (message_id <> ''),
    received_at  timestamptz NOT NULL, -- the server's INTERNALDATE
    sender       text NOT NULL DEFAULT '',
    subject      text NOT NULL DEFAULT '',
    raw          bytea NOT NULL,
    status       text NOT NULL CHECK (status IN ('ticket', 'comment', 'unmatched', 'noise', 'bounce', 'unparseable',
                                                 'assigned', 'discarded')),
    reason       text NOT NULL DEFAULT '',
    customer_id  text REFERENCES customers (id),
    ticket_id    bigint REFERENCES tickets (id),
    created_at   timestamptz NOT NULL,
    handled_by   text,
    handled_at   timestamptz,
    UNIQUE (mailbox, uid_validity, uid)
);
CREATE UNIQUE INDEX inbound_mail_message_id ON inbound_mail (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX inbound_mail_queue_idx ON inbound_mail (id) WHERE status IN ('unmatched', 'unparseable');
CREATE INDEX inbound_mail_ticket_idx ON inbound_mail (ticket_id) WHERE ticket_id IS NOT NULL;

-- +goose Down
DROP TABLE inbound_mail;
ALTER TABLE outbox DROP COLUMN bounce_reason, DROP COLUMN bounced_at, DROP COLUMN message_id;
ALTER TABLE tickets DROP CONSTRAINT tickets_source_check;
ALTER TABLE tickets ADD CONSTRAINT tickets_source_check CHECK (source IN ('probe', 'portal', 'api', 'alertmanager', 'preventive'));
DROP TABLE customer_contacts;
ALTER TABLE customers DROP COLUMN email_domains;
