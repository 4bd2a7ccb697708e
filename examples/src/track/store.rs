//! Where a tracker keeps what it saw: SQLite (`sqlite:PATH`, embedded, no
//! set-up). The schema is versioned: `examples/migrations/sqlite/*.sql`,
//! applied in order at open, each once.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Millis, Snapshot, Span, Transition};

/// The migrations, in order: (version, SQL).
const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../../migrations/sqlite/0001_init.sql"))];

/// What can go wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The `--db` value is not one this build can open.
    #[error("{0}")]
    Spec(String),
    /// The database refused.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
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
    conn: Connection,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl Store {
    /// Opens (and creates or upgrades) the store `spec`: `sqlite:PATH`,
    /// or a plain path.
    pub fn open(spec: &str) -> Result<Store, StoreError> {
        let path = match spec.split_once(':') {
            Some(("sqlite", p)) => p,
            Some(("postgres" | "postgresql", _)) => {
                return Err(StoreError::Spec(
                    "PostgreSQL is not supported by this build yet; use sqlite:PATH".into(),
                ));
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
        let mut s = Store { conn };
        s.migrate()?;
        Ok(s)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        self.conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);",
        )?;
        let current: i64 = self.conn.query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |r| r.get(0),
        )?;
        let known = MIGRATIONS.last().map_or(0, |m| m.0);
        if current > known {
            return Err(StoreError::TooNew {
                found: current,
                known,
            });
        }
        for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                [version],
            )?;
            tx.commit()?;
        }
        Ok(())
    }

    /// The schema version in use.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))?)
    }

    /// A run of `tracker` (its SIP URI) starts; returns its id.
    pub fn start_run(&self, tracker: &str, at: Millis) -> Result<i64, StoreError> {
        self.conn.execute(
            "INSERT INTO runs (tracker, started_ms, heartbeat_ms) VALUES (?1, ?2, ?2)",
            params![tracker, at],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The run is still alive at `at` (a run that dies without
    /// [`Store::end_run`] counts until its last heartbeat).
    pub fn heartbeat(&self, run: i64, at: Millis) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE runs SET heartbeat_ms = MAX(heartbeat_ms, ?2) WHERE id = ?1",
            params![run, at],
        )?;
        Ok(())
    }

    /// The run ended cleanly at `at`; an outage still open ends with it.
    pub fn end_run(&self, run: i64, at: Millis) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE runs SET ended_ms = ?2, heartbeat_ms = MAX(heartbeat_ms, ?2) WHERE id = ?1",
            params![run, at],
        )?;
        self.conn.execute(
            "UPDATE outages SET to_ms = ?2 WHERE run_id = ?1 AND to_ms IS NULL",
            params![run, at],
        )?;
        Ok(())
    }

    /// The run's connection dropped at `at` (nothing it reports until
    /// [`Store::outage_end`] is trusted).
    pub fn outage_start(&self, run: i64, at: Millis) -> Result<(), StoreError> {
        let open: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM outages WHERE run_id = ?1 AND to_ms IS NULL",
                [run],
                |r| r.get(0),
            )
            .optional()?;
        if open.is_none() {
            self.conn.execute(
                "INSERT INTO outages (run_id, from_ms) VALUES (?1, ?2)",
                params![run, at],
            )?;
        }
        Ok(())
    }

    /// The run is signed in again at `at`.
    pub fn outage_end(&self, run: i64, at: Millis) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE outages SET to_ms = ?2 WHERE run_id = ?1 AND to_ms IS NULL",
            params![run, at],
        )?;
        Ok(())
    }

    /// Records a transition the run saw (again: no duplicate).
    pub fn record(&self, run: i64, t: &Transition) -> Result<(), StoreError> {
        self.conn.execute(
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

    /// The spans the trackers covered that overlap `[from, to)`: each run
    /// from its start to its end (or last heartbeat), without its outages.
    pub fn spans(&self, from: Millis, to: Millis) -> Result<Vec<Span>, StoreError> {
        let mut runs = self.conn.prepare(
            "SELECT id, started_ms, COALESCE(ended_ms, heartbeat_ms) FROM runs \
             WHERE started_ms < ?2 AND COALESCE(ended_ms, heartbeat_ms) > ?1",
        )?;
        let mut outages = self.conn.prepare(
            "SELECT from_ms, COALESCE(to_ms, ?2) FROM outages WHERE run_id = ?1 ORDER BY from_ms",
        )?;
        let runs: Vec<(i64, Millis, Millis)> = runs
            .query_map(params![from, to], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let mut spans = Vec::new();
        for (id, start, end) in runs {
            let gaps: Vec<(Millis, Millis)> = outages
                .query_map(params![id, end], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let mut cursor = start;
            for (a, b) in gaps {
                if a > cursor {
                    spans.push(Span {
                        from: cursor,
                        to: a.min(end),
                    });
                }
                cursor = cursor.max(b);
            }
            if cursor < end {
                spans.push(Span {
                    from: cursor,
                    to: end,
                });
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
        let mut q = self.conn.prepare(
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

    /// Everybody with a transition, sorted.
    pub fn people(&self) -> Result<Vec<String>, StoreError> {
        let mut q = self
            .conn
            .prepare("SELECT DISTINCT who FROM transitions ORDER BY who")?;
        let rows = q.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes what ended before `before` (`--retention`): transitions,
    /// and runs (with their outages) that ended by then. Returns how many
    /// transitions went.
    pub fn purge(&self, before: Millis) -> Result<usize, StoreError> {
        let n = self
            .conn
            .execute("DELETE FROM transitions WHERE at_ms < ?1", [before])?;
        self.conn.execute(
            "DELETE FROM outages WHERE run_id IN \
             (SELECT id FROM runs WHERE COALESCE(ended_ms, heartbeat_ms) < ?1 \
              AND id NOT IN (SELECT run_id FROM transitions))",
            [before],
        )?;
        self.conn.execute(
            "DELETE FROM runs WHERE COALESCE(ended_ms, heartbeat_ms) < ?1 \
             AND id NOT IN (SELECT run_id FROM transitions)",
            [before],
        )?;
        Ok(n)
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
    fn unknown_databases_are_refused_with_a_reason() {
        let e = Store::open("postgres://localhost/x").expect_err("not yet");
        assert!(e.to_string().contains("PostgreSQL"), "{e}");
        assert!(Store::open("sqlite:").is_err());
    }
}
