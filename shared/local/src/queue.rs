//! Durable local queues with SQS semantics, on one SQLite file.
//!
//! A message survives a killed process (it is a row); a received message is hidden for the
//! visibility timeout and comes back unless deleted; every receive counts; a message received more
//! than the queue's maximum is moved to its dead-letter queue instead of being delivered again.
//! Receiving is one `UPDATE ... RETURNING` statement, so two runners never get the same message.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use floe_core::ports::{Delivery, Queue};
use floe_core::{Error, Result};
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

fn db_err(doing: &'static str) -> impl Fn(sqlx::Error) -> Error {
    move |e| Error::Transient(format!("local queue: {doing}: {e}"))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The SQLite file holding every local queue.
#[derive(Debug, Clone)]
pub struct QueueStore {
    pool: SqlitePool,
}

impl QueueStore {
    /// Opens (or creates) the queue database.
    pub async fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Config(format!("cannot create {}: {e}", dir.display())))?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(db_err("reading the path"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(db_err("opening"))?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS messages (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                queue TEXT NOT NULL,
                body TEXT NOT NULL,
                sent_at INTEGER NOT NULL,
                visible_at INTEGER NOT NULL,
                receive_count INTEGER NOT NULL DEFAULT 0,
                receipt TEXT
            )",
        )
        .execute(&pool)
        .await
        .map_err(db_err("creating the table"))?;
        // Who holds an in-flight message (a process, by pid and start time): a message held by
        // a process that has ended is taken back at once instead of after its visibility timeout.
        let has_owner: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pragma_table_info('messages') WHERE name = 'owner'",
        )
        .fetch_one(&pool)
        .await
        .map_err(db_err("reading the table"))?;
        if has_owner == 0 {
            match sqlx::query("ALTER TABLE messages ADD COLUMN owner TEXT")
                .execute(&pool)
                .await
            {
                Ok(_) => {}
                // Added by another process meanwhile.
                Err(e) if e.to_string().contains("duplicate column") => {}
                Err(e) => return Err(db_err("adding the owner column")(e)),
            }
        }
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS announced (key TEXT NOT NULL, etag TEXT NOT NULL, \
             at INTEGER NOT NULL, PRIMARY KEY (key, etag))",
        )
        .execute(&pool)
        .await
        .map_err(db_err("creating the table"))?;
        sqlx::query(
            "CREATE INDEX IF NOT EXISTS messages_ready ON messages (queue, visible_at, id)",
        )
        .execute(&pool)
        .await
        .map_err(db_err("creating the index"))?;
        Ok(QueueStore { pool })
    }

    /// A queue whose messages go to `dlq` after `max_receives` receives.
    pub fn queue(&self, name: &str, dlq: Option<(&str, u32)>) -> LocalQueue {
        LocalQueue {
            pool: self.pool.clone(),
            name: name.to_owned(),
            dlq: dlq.map(|(n, max)| (n.to_owned(), max)),
        }
    }

    /// Messages in a queue (visible or not).
    pub async fn depth(&self, queue: &str) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE queue = ?")
            .bind(queue)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err("counting"))?;
        Ok(n as u64)
    }

    /// The bodies in a queue, oldest first (for `floe` to show dead letters).
    pub async fn peek(&self, queue: &str) -> Result<Vec<(i64, String, u32)>> {
        let rows =
            sqlx::query("SELECT id, body, receive_count FROM messages WHERE queue = ? ORDER BY id")
                .bind(queue)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err("listing"))?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get::<i64, _>(0),
                    r.get::<String, _>(1),
                    r.get::<i64, _>(2) as u32,
                )
            })
            .collect())
    }

    /// Makes every in-flight message visible now: after a crash, nobody is working on them.
    pub async fn reclaim_in_flight(&self) -> Result<u64> {
        let now = now_ms();
        let res = sqlx::query(
            "UPDATE messages SET visible_at = ? WHERE visible_at > ? AND receipt IS NOT NULL",
        )
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db_err("reclaiming"))?;
        Ok(res.rows_affected())
    }

    /// Makes visible now the in-flight messages whose holder has ended (a `floe land --wait` or
    /// `floe up` killed mid-message): safe beside other live processes, whose messages are left
    /// alone. Returns how many came back.
    pub async fn reclaim_orphaned(&self) -> Result<u64> {
        let now = now_ms();
        let held: Vec<(i64, Option<String>)> = sqlx::query_as(
            "SELECT id, owner FROM messages WHERE visible_at > ? AND receipt IS NOT NULL",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err("listing messages in flight"))?;
        let mut reclaimed = 0;
        for (id, owner) in held {
            if owner.as_deref().is_some_and(|o| !owner_alive(o)) {
                let res = sqlx::query(
                    "UPDATE messages SET visible_at = ? WHERE id = ? AND owner = ? AND visible_at > ?",
                )
                .bind(now)
                .bind(id)
                .bind(owner)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(db_err("reclaiming"))?;
                reclaimed += res.rows_affected();
            }
        }
        Ok(reclaimed)
    }

    /// Landed objects already announced, as (key, etag).
    pub async fn seen_keys(&self) -> Result<std::collections::HashSet<(String, String)>> {
        let rows = sqlx::query("SELECT key, etag FROM announced")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err("listing announced files"))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Records an announced object.
    pub async fn mark_seen(&self, key: &str, etag: &str) -> Result<()> {
        sqlx::query("INSERT OR IGNORE INTO announced (key, etag, at) VALUES (?, ?, ?)")
            .bind(key)
            .bind(etag)
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(db_err("recording an announced file"))?;
        Ok(())
    }

    /// Moves every message of `from` (a dead-letter queue) back to `to`, visible now and with a
    /// fresh receive count. Returns how many moved.
    pub async fn redrive(&self, from: &str, to: &str) -> Result<u64> {
        let res = sqlx::query(
            "UPDATE messages SET queue = ?, visible_at = ?, receive_count = 0, receipt = NULL WHERE queue = ?",
        )
        .bind(to)
        .bind(now_ms())
        .bind(from)
        .execute(&self.pool)
        .await
        .map_err(db_err("redriving"))?;
        Ok(res.rows_affected())
    }
}

/// One local queue.
#[derive(Debug, Clone)]
pub struct LocalQueue {
    pool: SqlitePool,
    name: String,
    dlq: Option<(String, u32)>,
}

impl LocalQueue {
    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

#[async_trait]
impl Queue for LocalQueue {
    async fn send(&self, body: &str) -> Result<String> {
        let now = now_ms();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO messages (queue, body, sent_at, visible_at) VALUES (?, ?, ?, ?) RETURNING id",
        )
        .bind(&self.name)
        .bind(body)
        .bind(now)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err("sending"))?;
        Ok(id.to_string())
    }

    async fn receive(&self, max: usize, visibility: Duration) -> Result<Vec<Delivery>> {
        let now = now_ms();
        if let Some((dlq, max_receives)) = &self.dlq {
            let moved = sqlx::query(
                "UPDATE messages SET queue = ?, visible_at = ?, receive_count = 0, receipt = NULL \
                 WHERE queue = ? AND visible_at <= ? AND receive_count >= ?",
            )
            .bind(dlq)
            .bind(now)
            .bind(&self.name)
            .bind(now)
            .bind(*max_receives as i64)
            .execute(&self.pool)
            .await
            .map_err(db_err("dead-lettering"))?;
            if moved.rows_affected() > 0 {
                tracing::warn!(queue = %self.name, dlq = %dlq, count = moved.rows_affected(), "messages moved to the dead-letter queue");
            }
        }
        let rows = sqlx::query(
            "UPDATE messages SET visible_at = ?, receive_count = receive_count + 1, owner = ?, \
             receipt = CAST(id AS TEXT) || '-' || CAST(receive_count + 1 AS TEXT) || '-' || hex(randomblob(4)) \
             WHERE id IN (SELECT id FROM messages WHERE queue = ? AND visible_at <= ? ORDER BY id LIMIT ?) \
             RETURNING id, body, receive_count, receipt",
        )
        .bind(now + visibility.as_millis() as i64)
        .bind(this_owner())
        .bind(&self.name)
        .bind(now)
        .bind(max as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err("receiving"))?;
        let mut out: Vec<Delivery> = rows
            .iter()
            .map(|r| Delivery {
                message_id: r.get::<i64, _>(0).to_string(),
                body: r.get(1),
                receive_count: r.get::<i64, _>(2) as u32,
                receipt: r.get(3),
            })
            .collect();
        out.sort_by_key(|d| d.message_id.parse::<i64>().unwrap_or_default());
        Ok(out)
    }

    async fn delete(&self, receipt: &str) -> Result<()> {
        sqlx::query("DELETE FROM messages WHERE receipt = ?")
            .bind(receipt)
            .execute(&self.pool)
            .await
            .map_err(db_err("deleting"))?;
        Ok(())
    }

    async fn retry_later(&self, receipt: &str, delay: Duration) -> Result<()> {
        sqlx::query("UPDATE messages SET visible_at = ? WHERE receipt = ?")
            .bind(now_ms() + delay.as_millis() as i64)
            .bind(receipt)
            .execute(&self.pool)
            .await
            .map_err(db_err("changing visibility"))?;
        Ok(())
    }
}

/// This process as a message holder: `<pid>:<start time>` (the start time, from /proc, tells a
/// reused pid from the process that held the message; `<pid>:` where /proc is not there).
fn this_owner() -> &'static str {
    static OWNER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    OWNER.get_or_init(|| {
        let pid = std::process::id();
        format!("{pid}:{}", start_time(pid).unwrap_or_default())
    })
}

/// A process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat).
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19).map(str::to_owned)
}

/// Whether the holder `owner` (see [`this_owner`]) is still running. Without /proc, every
/// holder is taken as alive: its messages come back after their visibility timeout, as before.
fn owner_alive(owner: &str) -> bool {
    let Some((pid, started)) = owner.split_once(':') else {
        return true;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return true;
    };
    if !std::path::Path::new("/proc/self/stat").exists() || started.is_empty() {
        return true;
    }
    start_time(pid).as_deref() == Some(started)
}
