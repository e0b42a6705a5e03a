-- +goose Up
-- Portal seats (seed 004: desk-standard 2, desk-premium 5) are enforced by
-- the database, not by a count in Go that two racing creations could both
-- pass. The plan's number depends on the contracts in force and the SLA
-- presets, which live in Go: internal/auth writes it here (NULL: the plan
-- sets none) in the transaction that adds a customer's token or console
-- user, which also locks the customer's row; the trigger counts under that
-- lock, so a second creation waits for the first and then sees it.
CREATE TABLE portal_seat_limits (
    customer_id text PRIMARY KEY REFERENCES customers (id),
    seats       integer CHECK (seats >= 0),
    set_at      timestamptz NOT NULL
);

-- +goose StatementBegin
CREATE FUNCTION portal_seat_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was_active boolean := false;
    active     boolean;
    lim        integer;
    used       integer;
BEGIN
    IF NEW.role <> 'customer' THEN
        RETURN NEW;
    END IF;
    IF TG_TABLE_NAME = 'api_tokens' THEN
        active := NEW.revoked_at IS NULL;
        IF TG_OP = 'UPDATE' THEN
            was_active := OLD.revoked_at IS NULL AND OLD.role = 'customer' AND OLD.customer_id = NEW.customer_id;
        END IF;
    ELSE
        active := NEW.disabled_at IS NULL;
        IF TG_OP = 'UPDATE' THEN
            was_active := OLD.disabled_at IS NULL AND OLD.role = 'customer' AND OLD.customer_id = NEW.customer_id;
        END IF;
    END IF;
    -- Only a row that starts taking a seat is counted: a token's last use
    -- or a user's password change does not re-check the plan.
    IF NOT active OR was_active THEN
        RETURN NEW;
    END IF;
    SELECT seats INTO lim FROM portal_seat_limits WHERE customer_id = NEW.customer_id FOR UPDATE;
    IF lim IS NULL THEN
        RETURN NEW;
    END IF;
    SELECT (SELECT count(*) FROM api_tokens WHERE role = 'customer' AND customer_id = NEW.customer_id AND revoked_at IS NULL)
         + (SELECT count(*) FROM console_users WHERE role = 'customer' AND customer_id = NEW.customer_id AND disabled_at IS NULL)
      INTO used;
    IF used >= lim THEN
        -- VG001 is read by internal/auth as ErrNoSeats.
        RAISE EXCEPTION 'customer %: % portal seats, % taken', NEW.customer_id, lim, used USING ERRCODE = 'VG001';
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER api_tokens_portal_seat BEFORE INSERT OR UPDATE ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION portal_seat_check();
CREATE TRIGGER console_users_portal_seat BEFORE INSERT OR UPDATE ON console_users
    FOR EACH ROW EXECUTE FUNCTION portal_seat_check();

-- +goose Down
DROP TRIGGER console_users_portal_seat ON console_users;
DROP TRIGGER api_tokens_portal_seat ON api_tokens;
DROP FUNCTION portal_seat_check();
DROP TABLE portal_seat_limits;
