//! Where a tracker keeps what it saw: SQLite (`sqlite:PATH`, embedded, no
//! set-up), or PostgreSQL (`postgres://...`) when several trackers (one
//! per department or pool) share one store. The schema is versioned:
//! `examples/migrations/{sqlite,postgres}/*.sql`, applied in order at open,
//! each once (on PostgreSQL under an advisory lock, so trackers starting
//! together do not race).

use rusqlite::{Connection, OptionalExtension, params};

use super::{Millis, Snapshot, Span, Transition};

/// The migrations, in order: (version, SQL).
const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../../migrations/sqlite/0001_init.sql"))];
/// The same for PostgreSQL.
const PG_MIGRATIONS: &[(i64, &str)] =
    &[(1, include_str!("../../migrations/postgres/0001_init.sql"))];

/// What can go wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The `--db` value is not one this build can open.
    #[error("{0}")]
    Spec(String),
    /// The database refused.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL refused.
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] postgres::Error),
    /// The PostgreSQL connection's thread has gone.
    #[error("PostgreSQL: the connection is gone")]
    PostgresGone,
    /// The database has a newer schema than this program knows.
    #[error("the database has schema version {found}; this ocs knows up to {known}")]
    TooNew {
        /// The database's version.
        found: i64,
        /// The newest this program knows.
        known: i64,
    },
}

/// An open store.
pub struct Store {
    backend: Backend,
}

enum Backend {
    Sqlite(Connection),
    Postgres(Pg),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.backend {
            Backend::Sqlite(_) => "Store(SQLite)",
            Backend::Postgres(_) => "Store(PostgreSQL)",
        })
    }
}

type PgJob = Box<dyn FnOnce(&mut postgres::Client) + Send>;

/// A PostgreSQL connection on a thread of its own: the `postgres` client
/// runs a small runtime of its own, which must not run inside the
/// tracker's.
struct Pg {
    jobs: std::sync::mpsc::Sender<PgJob>,
}

impl Pg {
    fn connect(url: &str) -> Result<Pg, StoreError> {
        let url = url.to_owned();
        let (jobs, rx) = std::sync::mpsc::channel::<PgJob>();
        let (ready_tx, ready) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("ocs-track-pg".into())
            .spawn(move || {
                let mut client = match postgres::Client::connect(&url, postgres::NoTls) {
                    Ok(c) => {
                        let _ = ready_tx.send(Ok(()));
                        c
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                for job in rx {
                    job(&mut client);
                }
            })
            .map_err(|e| StoreError::Spec(format!("cannot start a thread: {e}")))?;
        ready.recv().map_err(|_| StoreError::PostgresGone)??;
        Ok(Pg { jobs })
    }

    /// Runs `f` on the connection and waits for its answer.
    fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> Result<T, postgres::Error> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.jobs
            .send(Box::new(move |c| {
                let _ = tx.send(f(c));
            }))
            .map_err(|_| StoreError::PostgresGone)?;
        Ok(rx.recv().map_err(|_| StoreError::PostgresGone)??)
    }
}

/// A run's covered spans: from `start` to `end` without the `gaps`
/// (sorted by start).
fn without_gaps(start: Millis, end: Millis, gaps: &[(Millis, Millis)], out: &mut Vec<Span>) {
    let mut cursor = start;
    for &(a, b) in gaps {
        if a > cursor {
            out.push(Span {
                from: cursor,
                to: a.min(end),
            });
        }
        cursor = cursor.max(b);
    }
    if cursor < end {
        out.push(Span {
            from: cursor,
            to: end,
        });
    }
}

fn pg_transition(r: &postgres::Row) -> Transition {
    Transition {
        who: r.get(0),
        at: r.get(1),
        from: r.get(2),
        to: Snapshot {
            state: r.get(3),
            availability: r
                .get::<_, Option<i64>>(4)
                .and_then(|a| u32::try_from(a).ok()),
            activity: r.get(5),
            custom: r.get(6),
            note: r.get(7),
        },
        source: r.get(8),
    }
}

impl Store {
    /// Opens (and creates or upgrades) the store `spec`: `sqlite:PATH`
    /// (or a plain path), or a `postgres://` URL.
    pub fn open(spec: &str) -> Result<Store, StoreError> {
        let path = match spec.split_once(':') {
            Some(("sqlite", p)) => p,
            Some(("postgres" | "postgresql", _)) => {
                let s = Store {
                    backend: Backend::Postgres(Pg::connect(spec)?),
                };
                s.migrate()?;
                return Ok(s);
            }
            _ => spec,
        };
        if path.is_empty() {
            return Err(StoreError::Spec(format!("{spec}: no path")));
        }
        let conn = Connection::open(path)?;
        // Several processes (a tracker and a report) may use the file at
        // once: wait for a lock rather than fail.
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let s = Store {
            backend: Backend::Sqlite(conn),
        };
        s.migrate()?;
        Ok(s)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let known = MIGRATIONS.last().map_or(0, |m| m.0);
        let conn = match &self.backend {
            Backend::Sqlite(c) => c,
            Backend::Postgres(pg) => {
                let found = pg.call(|c| {
                    let mut tx = c.transaction()?;
                    // One migrator at a time across every tracker.
                    tx.execute("SELECT pg_advisory_xact_lock(7270001)", &[])?;
                    tx.batch_execute(
                        "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)",
                    )?;
                    let current: i64 = tx
                        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])?
                        .get(0);
                    for (version, sql) in PG_MIGRATIONS.iter().filter(|m| m.0 > current) {
                        tx.batch_execute(sql)?;
                        tx.execute(
                            "INSERT INTO schema_version (version) VALUES ($1)",
                            &[version],
                        )?;
                    }
                    tx.commit()?;
                    Ok(current)
                })?;
                return if found > known {
                    Err(StoreError::TooNew { found, known })
                } else {
                    Ok(())
                };
            }
        };
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);",
        )?;
        let current: i64 = conn.query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |r| r.get(0),
        )?;
        if current > known {
            return Err(StoreError::TooNew {
                found: current,
                known,
            });
        }
        for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
            conn.execute_batch("BEGIN")?;
            let done = conn.execute_batch(sql).and_then(|()| {
                conn.execute(
                    "INSERT INTO schema_version (version) VALUES (?1)",
                    [version],
                )
            });
            match done {
                Ok(_) => conn.execute_batch("COMMIT")?,
                Err(e) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    /// The schema version in use.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        let q = "SELECT MAX(version) FROM schema_version";
        match &self.backend {
            Backend::Sqlite(c) => Ok(c.query_row(q, [], |r| r.get(0))?),
            Backend::Postgres(pg) => pg.call(move |c| Ok(c.query_one(q, &[])?.get(0))),
        }
    }

    /// A run of `tracker` (its SIP URI) starts; returns its id.
    pub fn start_run(&self, tracker: &str, at: Millis) -> Result<i64, StoreError> {
        match &self.backend {
            Backend::Sqlite(c) => {
                c.execute(
                    "INSERT INTO runs (tracker, started_ms, heartbeat_ms) VALUES (?1, ?2, ?2)",
                    params![tracker, at],
                )?;
                Ok(c.last_insert_rowid())
            }
            Backend::Postgres(pg) => {
                let tracker = tracker.to_owned();
                pg.call(move |c| {
                    Ok(c.query_one(
                        "INSERT INTO runs (tracker, started_ms, heartbeat_ms) VALUES ($1, $2, $2) RETURNING id",
                        &[&tracker, &at],
                    )?
                    .get(0))
                })
            }
        }
    }

    /// The run is still alive at `at` (a run that dies without
    /// [`Store::end_run`] counts until its last heartbeat).
    pub fn heartbeat(&self, run: i64, at: Millis) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(c) => {
                c.execute(
                    "UPDATE runs SET heartbeat_ms = MAX(heartbeat_ms, ?2) WHERE id = ?1",
                    params![run, at],
                )?;
                Ok(())
            }
            Backend::Postgres(pg) => pg.call(move |c| {
                c.execute(
                    "UPDATE runs SET heartbeat_ms = GREATEST(heartbeat_ms, $2) WHERE id = $1",
                    &[&run, &at],
                )
                .map(drop)
            }),
        }
    }

    /// The run ended cleanly at `at`; an outage still open ends with it.
    pub fn end_run(&self, run: i64, at: Millis) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(c) => {
                c.execute(
                    "UPDATE runs SET ended_ms = ?2, heartbeat_ms = MAX(heartbeat_ms, ?2) WHERE id = ?1",
                    params![run, at],
                )?;
                c.execute(
                    "UPDATE outages SET to_ms = ?2 WHERE run_id = ?1 AND to_ms IS NULL",
                    params![run, at],
                )?;
                Ok(())
            }
            Backend::Postgres(pg) => pg.call(move |c| {
                c.execute(
                    "UPDATE runs SET ended_ms = $2, heartbeat_ms = GREATEST(heartbeat_ms, $2) WHERE id = $1",
                    &[&run, &at],
                )?;
                c.execute(
                    "UPDATE outages SET to_ms = $2 WHERE run_id = $1 AND to_ms IS NULL",
                    &[&run, &at],
                )
                .map(drop)
            }),
        }
    }

    /// The run's connection dropped at `at` (nothing it reports until
    /// [`Store::outage_end`] is trusted).
    pub fn outage_start(&self, run: i64, at: Millis) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(c) => {
                let open: Option<i64> = c
                    .query_row(
                        "SELECT id FROM outages WHERE run_id = ?1 AND to_ms IS NULL",
                        [run],
                        |r| r.get(0),
                    )
                    .optional()?;
                if open.is_none() {
                    c.execute(
                        "INSERT INTO outages (run_id, from_ms) VALUES (?1, ?2)",
                        params![run, at],
                    )?;
                }
                Ok(())
            }
            Backend::Postgres(pg) => pg.call(move |c| {
                c.execute(
                    "INSERT INTO outages (run_id, from_ms) SELECT $1, $2 WHERE NOT EXISTS \
                     (SELECT 1 FROM outages WHERE run_id = $1 AND to_ms IS NULL)",
                    &[&run, &at],
                )
                .map(drop)
            }),
        }
    }

    /// The run is signed in again at `at`.
    pub fn outage_end(&self, run: i64, at: Millis) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(c) => {
                c.execute(
                    "UPDATE outages SET to_ms = ?2 WHERE run_id = ?1 AND to_ms IS NULL",
                    params![run, at],
                )?;
                Ok(())
            }
            Backend::Postgres(pg) => pg.call(move |c| {
                c.execute(
                    "UPDATE outages SET to_ms = $2 WHERE run_id = $1 AND to_ms IS NULL",
                    &[&run, &at],
                )
                .map(drop)
            }),
        }
    }

    /// Records a transition the run saw (again: no duplicate).
    pub fn record(&self, run: i64, t: &Transition) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(c) => {
                c.execute(
                    "INSERT OR IGNORE INTO transitions \
                     (run_id, who, at_ms, from_state, state, availability, activity, custom, note, source) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        run,
                        t.who,
                        t.at,
                        t.from,
                        t.to.state,
                        t.to.availability,
                        t.to.activity,
                        t.to.custom,
                        t.to.note,
                        t.source
                    ],
                )?;
                Ok(())
            }
            Backend::Postgres(pg) => {
                let t = t.clone();
                pg.call(move |c| {
                    let availability = t.to.availability.map(i64::from);
                    c.execute(
                        "INSERT INTO transitions \
                         (run_id, who, at_ms, from_state, state, availability, activity, custom, note, source) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
                        &[
                            &run,
                            &t.who,
                            &t.at,
                            &t.from,
                            &t.to.state,
                            &availability,
                            &t.to.activity,
                            &t.to.custom,
                            &t.to.note,
                            &t.source,
                        ],
                    )
                    .map(drop)
                })
            }
        }
    }

    /// The spans the trackers covered that overlap `[from, to)`: each run
    /// from its start to its end (or last heartbeat), without its outages.
    pub fn spans(&self, from: Millis, to: Millis) -> Result<Vec<Span>, StoreError> {
        let mut spans = Vec::new();
        match &self.backend {
            Backend::Sqlite(c) => {
                let mut runs = c.prepare(
                    "SELECT id, started_ms, COALESCE(ended_ms, heartbeat_ms) FROM runs \
                     WHERE started_ms < ?2 AND COALESCE(ended_ms, heartbeat_ms) > ?1",
                )?;
                let mut outages = c.prepare(
                    "SELECT from_ms, COALESCE(to_ms, ?2) FROM outages WHERE run_id = ?1 ORDER BY from_ms",
                )?;
                let runs: Vec<(i64, Millis, Millis)> = runs
                    .query_map(params![from, to], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<Result<_, _>>()?;
                for (id, start, end) in runs {
                    let gaps: Vec<(Millis, Millis)> = outages
                        .query_map(params![id, end], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<Result<_, _>>()?;
                    without_gaps(start, end, &gaps, &mut spans);
                }
            }
            Backend::Postgres(pg) => {
                let runs = pg.call(move |c| {
                    let runs = c.query(
                        "SELECT id, started_ms, COALESCE(ended_ms, heartbeat_ms) FROM runs \
                         WHERE started_ms < $2 AND COALESCE(ended_ms, heartbeat_ms) > $1",
                        &[&from, &to],
                    )?;
                    let mut out = Vec::new();
                    for r in runs {
                        let (id, start, end): (i64, i64, i64) = (r.get(0), r.get(1), r.get(2));
                        let gaps: Vec<(i64, i64)> = c
                            .query(
                                "SELECT from_ms, COALESCE(to_ms, $2) FROM outages WHERE run_id = $1 ORDER BY from_ms",
                                &[&id, &end],
                            )?
                            .iter()
                            .map(|g| (g.get(0), g.get(1)))
                            .collect();
                        out.push((start, end, gaps));
                    }
                    Ok(out)
                })?;
                for (start, end, gaps) in runs {
                    without_gaps(start, end, &gaps, &mut spans);
                }
            }
        }
        Ok(spans)
    }

    /// The transitions at or after `from` and before `to` (of `who` only,
    /// when given), oldest first.
    pub fn transitions(
        &self,
        from: Millis,
        to: Millis,
        who: Option<&str>,
    ) -> Result<Vec<Transition>, StoreError> {
        match &self.backend {
            Backend::Sqlite(c) => {
                let mut q = c.prepare(
                    "SELECT who, at_ms, from_state, state, availability, activity, custom, note, source \
                     FROM transitions WHERE at_ms >= ?1 AND at_ms < ?2 AND (?3 IS NULL OR who = ?3) \
                     ORDER BY at_ms, id",
                )?;
                let rows = q.query_map(params![from, to, who], |r| {
                    Ok(Transition {
                        who: r.get(0)?,
                        at: r.get(1)?,
                        from: r.get(2)?,
                        to: Snapshot {
                            state: r.get(3)?,
                            availability: r.get(4)?,
                            activity: r.get(5)?,
                            custom: r.get(6)?,
                            note: r.get(7)?,
                        },
                        source: r.get(8)?,
                    })
                })?;
                Ok(rows.collect::<Result<_, _>>()?)
            }
            Backend::Postgres(pg) => {
                let who = who.map(str::to_owned);
                pg.call(move |c| {
                    Ok(c.query(
                        "SELECT who, at_ms, from_state, state, availability, activity, custom, note, source \
                         FROM transitions WHERE at_ms >= $1 AND at_ms < $2 AND ($3::TEXT IS NULL OR who = $3) \
                         ORDER BY at_ms, id",
                        &[&from, &to, &who],
                    )?
                    .iter()
                    .map(pg_transition)
                    .collect())
                })
            }
        }
    }

    /// Everybody with a transition, sorted.
    pub fn people(&self) -> Result<Vec<String>, StoreError> {
        let q = "SELECT DISTINCT who FROM transitions ORDER BY who";
        match &self.backend {
            Backend::Sqlite(c) => {
                let mut q = c.prepare(q)?;
                let rows = q.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<Result<_, _>>()?)
            }
            Backend::Postgres(pg) => {
                pg.call(move |c| Ok(c.query(q, &[])?.iter().map(|r| r.get(0)).collect()))
            }
        }
    }

    /// Deletes what ended before `before` (`--retention`): transitions,
    /// and runs (with their outages) that ended by then. Returns how many
    /// transitions went.
    pub fn purge(&self, before: Millis) -> Result<usize, StoreError> {
        let steps = [
            "DELETE FROM transitions WHERE at_ms < {}",
            "DELETE FROM outages WHERE run_id IN \
             (SELECT id FROM runs WHERE COALESCE(ended_ms, heartbeat_ms) < {} \
              AND id NOT IN (SELECT run_id FROM transitions))",
            "DELETE FROM runs WHERE COALESCE(ended_ms, heartbeat_ms) < {} \
             AND id NOT IN (SELECT run_id FROM transitions)",
        ];
        match &self.backend {
            Backend::Sqlite(c) => {
                let mut n = 0;
                for (i, q) in steps.iter().enumerate() {
                    let k = c.execute(&q.replace("{}", "?1"), [before])?;
                    if i == 0 {
                        n = k;
                    }
                }
                Ok(n)
            }
            Backend::Postgres(pg) => pg.call(move |c| {
                let mut tx = c.transaction()?;
                let mut n = 0;
                for (i, q) in steps.iter().enumerate() {
                    let k = tx.execute(q.replace("{}", "$1").as_str(), &[&before])?;
                    if i == 0 {
                        n = usize::try_from(k).unwrap_or(usize::MAX);
                    }
                }
                tx.commit()?;
                Ok(n)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> String {
        let dir = std::env::temp_dir().join(format!("ocs-track-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        format!("sqlite:{}", dir.display())
    }

    fn busy(who: &str, at: Millis) -> Transition {
        Transition {
            who: who.into(),
            at,
            from: Some("online".into()),
            to: Snapshot {
                state: "busy".into(),
                availability: Some(6500),
                activity: None,
                custom: None,
                note: Some("budget".into()),
            },
            source: "ocs".into(),
        }
    }

    #[test]
    fn runs_outages_and_transitions_come_back_as_recorded() {
        let spec = temp("roundtrip");
        let s = Store::open(&spec).expect("open");
        assert_eq!(s.schema_version().expect("version"), 1);
        let run = s.start_run("sip:lead@x", 1_000).expect("run");
        s.record(run, &busy("sip:bob@x", 2_000)).expect("record");
        s.record(run, &busy("sip:bob@x", 2_000))
            .expect("a repeat is ignored");
        s.outage_start(run, 3_000).expect("outage");
        s.outage_start(run, 3_500).expect("still the same outage");
        s.outage_end(run, 4_000).expect("back");
        s.heartbeat(run, 6_000).expect("heartbeat");
        // Not ended: it counts until the last heartbeat.
        assert_eq!(
            s.spans(0, 10_000).expect("spans"),
            vec![
                Span {
                    from: 1_000,
                    to: 3_000
                },
                Span {
                    from: 4_000,
                    to: 6_000
                }
            ]
        );
        s.end_run(run, 8_000).expect("end");
        assert_eq!(s.spans(0, 10_000).expect("spans")[1].to, 8_000);
        let ts = s.transitions(0, 10_000, None).expect("transitions");
        assert_eq!(ts, vec![busy("sip:bob@x", 2_000)]);
        assert!(
            s.transitions(0, 10_000, Some("sip:carol@x"))
                .expect("none")
                .is_empty()
        );
        assert_eq!(s.people().expect("people"), vec!["sip:bob@x".to_owned()]);
        // Opening again keeps everything and migrates nothing twice.
        drop(s);
        let again = Store::open(&spec).expect("reopen");
        assert_eq!(again.schema_version().expect("version"), 1);
        assert_eq!(again.transitions(0, 10_000, None).expect("kept").len(), 1);
        assert_eq!(again.purge(5_000).expect("purge"), 1);
        assert!(again.transitions(0, 10_000, None).expect("gone").is_empty());
    }

    #[test]
    fn unreachable_databases_are_refused_with_a_reason() {
        // Port 9 (discard): nothing answers PostgreSQL there.
        let e = Store::open("postgres://ocs@127.0.0.1:9/x").expect_err("nothing there");
        assert!(e.to_string().contains("PostgreSQL"), "{e}");
        assert!(Store::open("sqlite:").is_err());
    }
}
