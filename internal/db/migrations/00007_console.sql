-- +goose Up
-- The web console: people who log in with a password (NOC staff, field
-- engineers, hospitals' portal users), their sessions, failed logins for
-- rate limiting, and the screenshots hospitals attach to their tickets.

CREATE TABLE console_users (
    id            bigserial PRIMARY KEY,
    username      text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9._@-]{1,63}$'),
    password_hash text NOT NULL CHECK (password_hash LIKE '$argon2id$%'), -- PHC string: parameters, salt and key
    role          text NOT NULL CHECK (role IN ('noc', 'engineer', 'customer')),
    customer_id   text REFERENCES customers (id),
    engineer_id   text REFERENCES engineers (id),
    language      text NOT NULL DEFAULT 'es' CHECK (language IN ('es', 'en')),
    created_at    timestamptz NOT NULL,
    disabled_at   timestamptz,
    CHECK ((role = 'customer') = (customer_id IS NOT NULL)),
    CHECK (role = 'engineer' OR engineer_id IS NULL)
);
CREATE INDEX console_users_customer_idx ON console_users (customer_id) WHERE customer_id IS NOT NULL AND disabled_at IS NULL;

-- Only the SHA-256 of a session id is stored: a copy of the table logs
-- nobody in. The CSRF token is per session.
CREATE TABLE console_sessions (
    id_sha256    bytea PRIMARY KEY CHECK (length(id_sha256) = 32),
    user_id      bigint NOT NULL REFERENCES console_users (id) ON DELETE CASCADE,
    csrf_token   text NOT NULL CHECK (length(csrf_token) >= 32),
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX console_sessions_user_idx ON console_sessions (user_id);
CREATE INDEX console_sessions_expiry_idx ON console_sessions (expires_at);

-- Failed logins, per username and remote address, counted over a window;
-- in the database so that every instance sees the same count.
CREATE TABLE console_login_failures (
    id       bigserial PRIMARY KEY,
    username text NOT NULL,
    remote   text NOT NULL,
    at       timestamptz NOT NULL
);
CREATE INDEX console_login_failures_key_idx ON console_login_failures (username, remote, at);
CREATE INDEX console_login_failures_remote_idx ON console_login_failures (remote, at);

-- Screenshots attached to a ticket from the portal (seed 003), checked by
-- their content, size-limited, readable by the ticket's customer and staff.
CREATE TABLE ticket_attachments (
    id           bigserial PRIMARY KEY,
    ticket_id    bigint NOT NULL REFERENCES tickets (id),
    customer_id  text NOT NULL REFERENCES customers (id),
    filename     text NOT NULL CHECK (filename <> '' AND length(filename) <= 200),
    content_type text NOT NULL CHECK (content_type IN ('image/png', 'image/jpeg')),
    size_bytes   integer NOT NULL CHECK (size_bytes > 0 AND size_bytes <= 5242880),
    data         bytea NOT NULL CHECK (length(data) = size_bytes),
    sha256       bytea NOT NULL CHECK (length(sha256) = 32),
    uploaded_by  text NOT NULL,
    created_at   timestamptz NOT NULL
);
CREATE INDEX ticket_attachments_ticket_idx ON ticket_attachments (ticket_id, id);

-- +goose Down
DROP TABLE ticket_attachments, console_login_failures, console_sessions, console_users;
