-- Schema 2: PAI-DSW instances and instance snapshots. Same conventions as
-- schema 1 (whole record as JSON in `data`, filter and sort columns beside
-- it, times in Unix nanoseconds). Instance labels live in `tags`.

CREATE TABLE dsw_instances (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL,
    workspace_id  TEXT NOT NULL,
    name          TEXT NOT NULL,
    status        TEXT NOT NULL,
    target_status TEXT NOT NULL,
    settle_at     BIGINT NOT NULL,
    priority      INTEGER NOT NULL,
    created_at    BIGINT NOT NULL,
    modified_at   BIGINT NOT NULL,
    data          TEXT NOT NULL
);
CREATE INDEX dsw_instances_account ON dsw_instances (account_id, created_at);

CREATE TABLE dsw_snapshots (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    modified_at BIGINT NOT NULL,
    data        TEXT NOT NULL
);
CREATE INDEX dsw_snapshots_instance ON dsw_snapshots (account_id, instance_id, created_at);
CREATE INDEX dsw_snapshots_status ON dsw_snapshots (status);
