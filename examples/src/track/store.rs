//! Where a tracker keeps what it saw: SQLite (`sqlite:PATH`, embedded, no
//! set-up), or PostgreSQL (`postgres://...`) when several trackers (one
//! per department or pool) share one store. The schema is versioned:
//! `examples/migrations/{sqlite,postgres}/*.sql`, applied in order at open,
//! each once (on PostgreSQL under an advisory lock, so trackers starting
//! together do not race).

use rusqlite::Connection;

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
    /// More changes of one contact in one millisecond than the store
    /// spreads over the following ones (a thousand).
    #[error("{0}")]
    Crowded(String),
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

/// A query argument: both backends bind these.
#[derive(Debug, Clone)]
enum Arg {
    Int(Option<i64>),
    Text(Option<String>),
}

impl rusqlite::ToSql for Arg {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Arg::Int(v) => v.to_sql(),
            Arg::Text(v) => v.to_sql(),
        }
    }
}

fn int(v: i64) -> Arg {
    Arg::Int(Some(v))
}

fn text(v: &str) -> Arg {
    Arg::Text(Some(v.to_owned()))
}

/// Which kind of value a result column holds.
#[derive(Debug, Clone, Copy)]
enum Col {
    Int,
    Text,
}

/// A result value.
#[derive(Debug, Clone)]
enum Val {
    Int(Option<i64>),
    Text(Option<String>),
}

impl Val {
    fn int(&self) -> Option<i64> {
        match self {
            Val::Int(v) => *v,
            Val::Text(_) => None,
        }
    }

    fn text(&self) -> Option<String> {
        match self {
            Val::Text(v) => v.clone(),
            Val::Int(_) => None,
        }
    }
}

/// The queries below are written once, in SQLite's `?N` placeholders and
/// SQL both databases speak (`ON CONFLICT DO NOTHING`, `RETURNING`,
/// `CASE` instead of `MAX`/`GREATEST`, `CAST`); PostgreSQL gets `$N`.
fn pg_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
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

    /// Runs a statement; how many rows it changed.
    fn exec(&self, sql: &'static str, args: Vec<Arg>) -> Result<u64, StoreError> {
        match &self.backend {
            Backend::Sqlite(c) => {
                Ok(c.execute(sql, rusqlite::params_from_iter(args.iter()))? as u64)
            }
            Backend::Postgres(pg) => pg.call(move |c| {
                let refs = pg_args(&args);
                c.execute(pg_sql(sql).as_str(), &refs)
            }),
        }
    }

    /// Runs a query; its rows, each column read as `cols` says.
    fn rows(
        &self,
        sql: &'static str,
        args: Vec<Arg>,
        cols: &'static [Col],
    ) -> Result<Vec<Vec<Val>>, StoreError> {
        match &self.backend {
            Backend::Sqlite(c) => {
                let mut q = c.prepare(sql)?;
                let rows = q.query_map(rusqlite::params_from_iter(args.iter()), |r| {
                    cols.iter()
                        .enumerate()
                        .map(|(i, col)| {
                            Ok(match col {
                                Col::Int => Val::Int(r.get(i)?),
                                Col::Text => Val::Text(r.get(i)?),
                            })
                        })
                        .collect::<rusqlite::Result<Vec<Val>>>()
                })?;
                Ok(rows.collect::<Result<_, _>>()?)
            }
            Backend::Postgres(pg) => pg.call(move |c| {
                let refs = pg_args(&args);
                let rows = c.query(pg_sql(sql).as_str(), &refs)?;
                rows.iter()
                    .map(|r| {
                        cols.iter()
                            .enumerate()
                            .map(|(i, col)| {
                                Ok(match col {
                                    Col::Int => Val::Int(r.try_get(i)?),
                                    Col::Text => Val::Text(r.try_get(i)?),
                                })
                            })
                            .collect()
                    })
                    .collect()
            }),
        }
    }

    /// Runs `steps` as one transaction.
    fn transaction<T>(
        &self,
        steps: impl FnOnce(&Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.exec("BEGIN", Vec::new())?;
        match steps(self) {
            Ok(v) => {
                self.exec("COMMIT", Vec::new())?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.exec("ROLLBACK", Vec::new());
                Err(e)
            }
        }
    }

    /// The schema version in use.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        let rows = self.rows(
            "SELECT MAX(version) FROM schema_version",
            Vec::new(),
            &[Col::Int],
        )?;
        Ok(rows.first().and_then(|r| r[0].int()).unwrap_or(0))
    }

    /// A run of `tracker` (its SIP URI) starts; returns its id.
    pub fn start_run(&self, tracker: &str, at: Millis) -> Result<i64, StoreError> {
        let rows = self.rows(
            "INSERT INTO runs (tracker, started_ms, heartbeat_ms) VALUES (?1, ?2, ?2) RETURNING id",
            vec![text(tracker), int(at)],
            &[Col::Int],
        )?;
        rows.first()
            .and_then(|r| r[0].int())
            .ok_or_else(|| StoreError::Spec("the database gave the new run no id".into()))
    }

    /// The run is still alive at `at` (a run that dies without
    /// [`Store::end_run`] counts until its last heartbeat).
    pub fn heartbeat(&self, run: i64, at: Millis) -> Result<(), StoreError> {
        self.exec(
            "UPDATE runs SET heartbeat_ms = CASE WHEN heartbeat_ms > ?2 THEN heartbeat_ms ELSE ?2 END \
             WHERE id = ?1",
            vec![int(run), int(at)],
        )
        .map(drop)
    }

    /// The run ended cleanly at `at`; an outage still open ends with it.
    pub fn end_run(&self, run: i64, at: Millis) -> Result<(), StoreError> {
        self.exec(
            "UPDATE runs SET ended_ms = ?2, \
             heartbeat_ms = CASE WHEN heartbeat_ms > ?2 THEN heartbeat_ms ELSE ?2 END WHERE id = ?1",
            vec![int(run), int(at)],
        )?;
        self.outage_end(run, at)
    }

    /// The run's connection dropped at `at` (nothing it reports until
    /// [`Store::outage_end`] is trusted); an outage already open stays.
    pub fn outage_start(&self, run: i64, at: Millis) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO outages (run_id, from_ms) SELECT ?1, ?2 WHERE NOT EXISTS \
             (SELECT 1 FROM outages WHERE run_id = ?1 AND to_ms IS NULL)",
            vec![int(run), int(at)],
        )
        .map(drop)
    }

    /// The run is signed in again at `at`.
    pub fn outage_end(&self, run: i64, at: Millis) -> Result<(), StoreError> {
        self.exec(
            "UPDATE outages SET to_ms = ?2 WHERE run_id = ?1 AND to_ms IS NULL",
            vec![int(run), int(at)],
        )
        .map(drop)
    }

    /// Records a transition the run saw. Written again (the same change at
    /// the same millisecond), it is not duplicated; a *different* change
    /// at a millisecond already taken for this contact goes in at the next
    /// free one, after it, so nothing the run saw is lost and the order
    /// holds (two changes often arrive together: a sign-in's state and the
    /// next one). Returns the millisecond it was stored at.
    pub fn record(&self, run: i64, t: &Transition) -> Result<Millis, StoreError> {
        use Col::{Int, Text};
        // Bounded: a contact cannot change state a thousand times in one
        // millisecond; past that the change is reported, not dropped.
        for at in t.at..t.at + 1000 {
            let inserted = self.exec(
                "INSERT INTO transitions \
                 (run_id, who, at_ms, from_state, state, availability, activity, custom, note, source) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT DO NOTHING",
                vec![
                    int(run),
                    text(&t.who),
                    int(at),
                    Arg::Text(t.from.clone()),
                    text(&t.to.state),
                    Arg::Int(t.to.availability.map(i64::from)),
                    Arg::Text(t.to.activity.clone()),
                    Arg::Text(t.to.custom.clone()),
                    Arg::Text(t.to.note.clone()),
                    text(&t.source),
                ],
            )?;
            if inserted > 0 {
                return Ok(at);
            }
            let there = self.rows(
                "SELECT state, availability, activity, custom, note FROM transitions \
                 WHERE run_id = ?1 AND who = ?2 AND at_ms = ?3",
                vec![int(run), text(&t.who), int(at)],
                &[Text, Int, Text, Text, Text],
            )?;
            let same = there.first().is_some_and(|r| {
                r[0].text().as_deref() == Some(t.to.state.as_str())
                    && r[1].int().and_then(|a| u32::try_from(a).ok()) == t.to.availability
                    && r[2].text() == t.to.activity
                    && r[3].text() == t.to.custom
                    && r[4].text() == t.to.note
            });
            if same {
                return Ok(at);
            }
        }
        Err(StoreError::Crowded(format!(
            "{}: a thousand changes in one millisecond at {}",
            t.who, t.at
        )))
    }

    /// The spans the trackers covered that overlap `[from, to)`: each run
    /// from its start to its end (or last heartbeat), without its outages.
    pub fn spans(&self, from: Millis, to: Millis) -> Result<Vec<Span>, StoreError> {
        let runs = self.rows(
            "SELECT id, started_ms, COALESCE(ended_ms, heartbeat_ms) FROM runs \
             WHERE started_ms < ?2 AND COALESCE(ended_ms, heartbeat_ms) > ?1",
            vec![int(from), int(to)],
            &[Col::Int, Col::Int, Col::Int],
        )?;
        let mut spans = Vec::new();
        for r in runs {
            let (id, start, end) = (
                r[0].int().unwrap_or(0),
                r[1].int().unwrap_or(0),
                r[2].int().unwrap_or(0),
            );
            let gaps: Vec<(Millis, Millis)> = self
                .rows(
                    "SELECT from_ms, COALESCE(to_ms, ?2) FROM outages WHERE run_id = ?1 ORDER BY from_ms",
                    vec![int(id), int(end)],
                    &[Col::Int, Col::Int],
                )?
                .iter()
                .map(|g| (g[0].int().unwrap_or(0), g[1].int().unwrap_or(end)))
                .collect();
            without_gaps(start, end, &gaps, &mut spans);
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
        use Col::{Int, Text};
        let rows = self.rows(
            "SELECT who, at_ms, from_state, state, availability, activity, custom, note, source \
             FROM transitions WHERE at_ms >= ?1 AND at_ms < ?2 AND (CAST(?3 AS TEXT) IS NULL OR who = ?3) \
             ORDER BY at_ms, id",
            vec![int(from), int(to), Arg::Text(who.map(str::to_owned))],
            &[Text, Int, Text, Text, Int, Text, Text, Text, Text],
        )?;
        Ok(rows
            .iter()
            .map(|r| Transition {
                who: r[0].text().unwrap_or_default(),
                at: r[1].int().unwrap_or(0),
                from: r[2].text(),
                to: Snapshot {
                    state: r[3].text().unwrap_or_default(),
                    availability: r[4].int().and_then(|a| u32::try_from(a).ok()),
                    activity: r[5].text(),
                    custom: r[6].text(),
                    note: r[7].text(),
                },
                source: r[8].text().unwrap_or_default(),
            })
            .collect())
    }

    /// Everybody with a transition, sorted.
    pub fn people(&self) -> Result<Vec<String>, StoreError> {
        let rows = self.rows(
            "SELECT DISTINCT who FROM transitions ORDER BY who",
            Vec::new(),
            &[Col::Text],
        )?;
        Ok(rows.iter().filter_map(|r| r[0].text()).collect())
    }

    /// Deletes what ended before `before` (`--retention`): transitions,
    /// and runs (with their outages) that ended by then. Returns how many
    /// transitions went.
    pub fn purge(&self, before: Millis) -> Result<usize, StoreError> {
        self.transaction(|s| {
            let n = s.exec(
                "DELETE FROM transitions WHERE at_ms < ?1",
                vec![int(before)],
            )?;
            s.exec(
                "DELETE FROM outages WHERE run_id IN \
                 (SELECT id FROM runs WHERE COALESCE(ended_ms, heartbeat_ms) < ?1 \
                  AND id NOT IN (SELECT run_id FROM transitions))",
                vec![int(before)],
            )?;
            s.exec(
                "DELETE FROM runs WHERE COALESCE(ended_ms, heartbeat_ms) < ?1 \
                 AND id NOT IN (SELECT run_id FROM transitions)",
                vec![int(before)],
            )?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }
}

/// The arguments as the postgres client takes them.
fn pg_args(args: &[Arg]) -> Vec<&(dyn postgres::types::ToSql + Sync)> {
    args.iter()
        .map(|a| match a {
            Arg::Int(v) => v as &(dyn postgres::types::ToSql + Sync),
            Arg::Text(v) => v as &(dyn postgres::types::ToSql + Sync),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_databases_are_refused_with_a_reason() {
        // Port 9 (discard): nothing answers PostgreSQL there.
        let e = Store::open("postgres://ocs@127.0.0.1:9/x").expect_err("nothing there");
        assert!(e.to_string().contains("PostgreSQL"), "{e}");
        assert!(Store::open("sqlite:").is_err());
    }

    #[test]
    fn postgres_gets_dollar_placeholders() {
        assert_eq!(
            pg_sql("a = ?1 AND b = ?12 AND c = '?'"),
            "a = $1 AND b = $12 AND c = '?'"
        );
    }
}
