-- ocs track: the first schema (PostgreSQL; the same tables as
-- ../sqlite/0001_init.sql). Times are milliseconds since the Unix epoch,
-- UTC. Several trackers may share the database: each writes its own runs.

CREATE TABLE runs (
    id           BIGSERIAL PRIMARY KEY,
    tracker      TEXT   NOT NULL,
    started_ms   BIGINT NOT NULL,
    heartbeat_ms BIGINT NOT NULL,
    ended_ms     BIGINT
);

CREATE TABLE outages (
    id      BIGSERIAL PRIMARY KEY,
    run_id  BIGINT NOT NULL REFERENCES runs (id),
    from_ms BIGINT NOT NULL,
    to_ms   BIGINT
);

CREATE TABLE transitions (
    id           BIGSERIAL PRIMARY KEY,
    run_id       BIGINT NOT NULL REFERENCES runs (id),
    who          TEXT   NOT NULL,
    at_ms        BIGINT NOT NULL,
    from_state   TEXT,
    state        TEXT   NOT NULL,
    availability BIGINT,
    activity     TEXT,
    custom       TEXT,
    note         TEXT,
    source       TEXT   NOT NULL,
    UNIQUE (run_id, who, at_ms)
);

CREATE INDEX transitions_by_time ON transitions (at_ms, who);
