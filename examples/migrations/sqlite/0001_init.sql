-- ocs track: the first schema (SQLite). Times are milliseconds since the
-- Unix epoch, UTC.

-- One row per run of a tracker: from its start until it ended, or, when it
-- did not end cleanly, until its last heartbeat.
CREATE TABLE runs (
    id           INTEGER PRIMARY KEY,
    tracker      TEXT    NOT NULL,
    started_ms   INTEGER NOT NULL,
    heartbeat_ms INTEGER NOT NULL,
    ended_ms     INTEGER
);

-- Stretches of a run while its connection was down.
CREATE TABLE outages (
    id      INTEGER PRIMARY KEY,
    run_id  INTEGER NOT NULL REFERENCES runs (id),
    from_ms INTEGER NOT NULL,
    to_ms   INTEGER
);

-- Every presence change a run saw.
CREATE TABLE transitions (
    id           INTEGER PRIMARY KEY,
    run_id       INTEGER NOT NULL REFERENCES runs (id),
    who          TEXT    NOT NULL,
    at_ms        INTEGER NOT NULL,
    from_state   TEXT,
    state        TEXT    NOT NULL,
    availability INTEGER,
    activity     TEXT,
    custom       TEXT,
    note         TEXT,
    source       TEXT    NOT NULL,
    -- A run records a change once, however often it is written.
    UNIQUE (run_id, who, at_ms)
);

CREATE INDEX transitions_by_time ON transitions (at_ms, who);
