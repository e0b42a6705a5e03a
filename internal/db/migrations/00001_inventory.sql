-- +goose Up
-- Inventory and contracts. Ids are the stable ids written in the inventory
-- file, so re-importing updates rows instead of duplicating them. Nothing is
-- deleted by an import: what leaves the file is retired, so history stays.

CREATE TABLE customers (
    id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9._-]*$'),
    name        text NOT NULL,
    country     text NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    time_zone   text NOT NULL,
    language    text NOT NULL DEFAULT 'es' CHECK (language IN ('es', 'en')),
    retired_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sites (
    id                text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9._-]*$'),
    customer_id       text NOT NULL REFERENCES customers (id),
    name              text NOT NULL,
    kind              text NOT NULL CHECK (kind IN ('hospital', 'centre', 'department')),
    city              text NOT NULL DEFAULT '',
    address           text NOT NULL DEFAULT '',
    contact           text NOT NULL DEFAULT '',
    gateway_device_id text, -- the uplink whose loss makes the site unreachable
    retired_at        timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (id, customer_id)
);
CREATE INDEX sites_customer_idx ON sites (customer_id);

CREATE TABLE devices (
    id               text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9._-]*$'),
    customer_id      text NOT NULL,
    site_id          text NOT NULL,
    name             text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('pacs', 'ris', 'broker', 'modality', 'biomedical', 'network')),
    modality         text NOT NULL DEFAULT '' CHECK ((kind = 'modality') = (modality <> '')),
    core             boolean NOT NULL DEFAULT false,
    manufacturer     text NOT NULL DEFAULT '',
    model            text NOT NULL DEFAULT '',
    serial           text NOT NULL DEFAULT '',
    install_date     date,
    warranty_end     date,

    dicom_host       text,
    dicom_port       integer CHECK (dicom_port BETWEEN 1 AND 65535),
    dicom_called_ae  text,
    dicom_calling_ae text,
    dicom_tls        boolean NOT NULL DEFAULT false,

    snmp_host        text,
    snmp_port        integer CHECK (snmp_port BETWEEN 1 AND 65535),
    snmp_version     text CHECK (snmp_version IN ('v2c', 'v3')),
    snmp_community   text,  -- secret
    snmp_user        text,
    snmp_auth_proto  text,
    snmp_auth_pass   text,  -- secret
    snmp_priv_proto  text,
    snmp_priv_pass   text,  -- secret

    tcp_host         text,
    tcp_port         integer CHECK (tcp_port BETWEEN 1 AND 65535),

    heartbeat_grace_seconds integer CHECK (heartbeat_grace_seconds > 0),
    heartbeat_token_sha256  bytea UNIQUE, -- only the hash: the token is a secret

    probe_interval_seconds integer NOT NULL DEFAULT 60 CHECK (probe_interval_seconds > 0),
    probe_retries          integer NOT NULL DEFAULT 3 CHECK (probe_retries >= 0),

    retired_at       timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (site_id, customer_id) REFERENCES sites (id, customer_id)
);
CREATE INDEX devices_customer_idx ON devices (customer_id);
CREATE INDEX devices_site_idx ON devices (site_id);

ALTER TABLE sites ADD FOREIGN KEY (gateway_device_id) REFERENCES devices (id) DEFERRABLE INITIALLY DEFERRED;

CREATE TABLE contracts (
    id               text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9._-]*$'),
    customer_id      text NOT NULL REFERENCES customers (id),
    plan             text NOT NULL DEFAULT '',
    sla_policy       text NOT NULL,
    all_devices      boolean NOT NULL DEFAULT false,
    starts_on        date NOT NULL,
    ends_on          date NOT NULL CHECK (ends_on >= starts_on),
    activated_on     date, -- close act signed and first invoice issued (seed 000 §1)
    paid_up          boolean NOT NULL DEFAULT true,
    hour_bank_hours        integer CHECK (hour_bank_hours > 0),
    hour_bank_valid_months integer CHECK (hour_bank_valid_months > 0),
    hour_bank_whole_hours  boolean NOT NULL DEFAULT true,
    retired_at       timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX contracts_customer_idx ON contracts (customer_id);

CREATE TABLE contract_devices (
    contract_id text NOT NULL REFERENCES contracts (id) ON DELETE CASCADE,
    device_id   text NOT NULL REFERENCES devices (id),
    PRIMARY KEY (contract_id, device_id)
);

-- Warranty windows: "support" is free support after delivery (seed 001),
-- "manufacturing_defects" covers only those (seed 004).
CREATE TABLE contract_warranties (
    contract_id text NOT NULL REFERENCES contracts (id) ON DELETE CASCADE,
    ordinal     integer NOT NULL,
    starts_on   date NOT NULL,
    ends_on     date NOT NULL CHECK (ends_on >= starts_on),
    covers      text NOT NULL CHECK (covers IN ('support', 'manufacturing_defects')),
    device_ids  text[] NOT NULL DEFAULT '{}', -- empty: every device of the contract
    PRIMARY KEY (contract_id, ordinal)
);

-- API bearer tokens; only their SHA-256 is stored (they are 256-bit random).
CREATE TABLE api_tokens (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL,
    role         text NOT NULL CHECK (role IN ('noc', 'engineer', 'customer')),
    customer_id  text REFERENCES customers (id),
    engineer_id  text,
    token_sha256 bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz,
    CHECK ((role = 'customer') = (customer_id IS NOT NULL))
);

-- +goose Down
DROP TABLE api_tokens, contract_warranties, contract_devices, contracts;
ALTER TABLE sites DROP COLUMN gateway_device_id;
DROP TABLE devices, sites, customers;
