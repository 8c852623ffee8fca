//! Pipeline events on one machine: one JSON object per line in `.floe/events.jsonl`, appended
//! whole, so `tail -f` shows what EventBridge would carry in AWS.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use floe_core::ports::{EventSink, PipelineEvent};
use floe_core::{Error, Result};

/// Appends events to a JSON-lines file.
#[derive(Debug)]
pub struct EventLog {
    path: PathBuf,
    lock: Mutex<()>,
}

impl EventLog {
    /// The log at `path` (created on first event).
    pub fn new(path: &Path) -> Self {
        EventLog {
            path: path.to_owned(),
            lock: Mutex::new(()),
        }
    }

    /// Every event logged so far, oldest first.
    pub fn read(&self) -> Result<Vec<PipelineEvent>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(Error::Transient(format!(
                    "reading {}: {e}",
                    self.path.display()
                )));
            }
        };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).map_err(|e| {
                    Error::Internal(format!("{}: bad event line: {e}", self.path.display()))
                })
            })
            .collect()
    }
}

#[async_trait]
impl EventSink for EventLog {
    async fn emit(&self, event: PipelineEvent) -> Result<()> {
        let line = serde_json::to_string(&event).expect("events serialise") + "\n";
        let _guard = self.lock.lock().expect("event log lock");
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Transient(format!("creating {}: {e}", dir.display())))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| Error::Transient(format!("opening {}: {e}", self.path.display())))?;
        f.write_all(line.as_bytes())
            .map_err(|e| Error::Transient(format!("writing {}: {e}", self.path.display())))
    }
}
