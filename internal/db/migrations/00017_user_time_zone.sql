-- +goose Up
-- A console user's own time zone (IANA name), the zone every time on the
-- pages they read is written in; '' means the default (the customer's zone
-- for a customer's users, the server's for staff). Owned by console's users.
ALTER TABLE console_users ADD COLUMN time_zone text NOT NULL DEFAULT ''
    CHECK (length(time_zone) <= 64 AND time_zone !~ '[[:space:][:cntrl:]]');

-- +goose Down
ALTER TABLE console_users DROP COLUMN time_zone;
