-- Schema 1. Every resource row keeps the whole record as JSON in `data`;
-- the other columns are copies of the fields that queries filter or sort
-- on, written in the same statement. Times are Unix nanoseconds (UTC).
-- Booleans are INTEGER 0/1. Portable to PostgreSQL as written.

CREATE TABLE accounts (
    id   TEXT PRIMARY KEY,
    data TEXT NOT NULL
);

CREATE TABLE access_keys (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    data       TEXT NOT NULL
);

CREATE TABLE resource_groups (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    is_default INTEGER NOT NULL,
    data       TEXT NOT NULL
);
CREATE INDEX resource_groups_account ON resource_groups (account_id, is_default);

CREATE TABLE instances (
    id                TEXT PRIMARY KEY,
    account_id        TEXT NOT NULL,
    region_id         TEXT NOT NULL,
    zone_id           TEXT NOT NULL,
    name              TEXT NOT NULL,
    status            TEXT NOT NULL,
    target_status     TEXT NOT NULL,
    settle_at         BIGINT NOT NULL,
    resource_group_id TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    data              TEXT NOT NULL
);
CREATE INDEX instances_account ON instances (account_id, region_id, created_at);

CREATE TABLE disks (
    id                 TEXT PRIMARY KEY,
    account_id         TEXT NOT NULL,
    region_id          TEXT NOT NULL,
    zone_id            TEXT NOT NULL,
    instance_id        TEXT NOT NULL,
    name               TEXT NOT NULL,
    type               TEXT NOT NULL,
    category           TEXT NOT NULL,
    status             TEXT NOT NULL,
    target_status      TEXT NOT NULL,
    settle_at          BIGINT NOT NULL,
    source_snapshot_id TEXT NOT NULL,
    resource_group_id  TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    data               TEXT NOT NULL
);
CREATE INDEX disks_account ON disks (account_id, region_id, created_at);
CREATE INDEX disks_instance ON disks (instance_id);

CREATE TABLE snapshots (
    id                TEXT PRIMARY KEY,
    account_id        TEXT NOT NULL,
    region_id         TEXT NOT NULL,
    disk_id           TEXT NOT NULL,
    instance_id       TEXT NOT NULL,
    name              TEXT NOT NULL,
    status            TEXT NOT NULL,
    type              TEXT NOT NULL,
    disk_type         TEXT NOT NULL,
    category          TEXT NOT NULL,
    usage             TEXT NOT NULL,
    resource_group_id TEXT NOT NULL,
    encrypted         INTEGER NOT NULL,
    created_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    data              TEXT NOT NULL
);
CREATE INDEX snapshots_account ON snapshots (account_id, region_id, created_at);
CREATE INDEX snapshots_disk ON snapshots (disk_id, status);
CREATE INDEX snapshots_expiry ON snapshots (expires_at);

CREATE TABLE tags (
    resource_id TEXT NOT NULL,
    tag_key     TEXT NOT NULL,
    tag_value   TEXT NOT NULL,
    PRIMARY KEY (resource_id, tag_key)
);
CREATE INDEX tags_key ON tags (tag_key, tag_value);

CREATE TABLE idempotency_tokens (
    account_id TEXT NOT NULL,
    action     TEXT NOT NULL,
    token      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    data       TEXT NOT NULL,
    PRIMARY KEY (account_id, action, token)
);

CREATE TABLE signature_nonces (
    access_key_id TEXT NOT NULL,
    nonce         TEXT NOT NULL,
    expires_at    BIGINT NOT NULL,
    PRIMARY KEY (access_key_id, nonce)
);
CREATE INDEX signature_nonces_expiry ON signature_nonces (expires_at);
