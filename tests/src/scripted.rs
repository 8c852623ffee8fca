//! A scripted AWS JSON-protocol endpoint on 127.0.0.1, for behaviour a stand-in cannot show:
//! paged results, throttling, queries that keep running. Each operation (the `X-Amz-Target`
//! suffix, e.g. `GetQueryResults`) answers from its own script, in order; the last reply of a
//! script repeats. Every request is recorded for the test to inspect.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One canned HTTP answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body.
    pub body: Value,
}

impl Reply {
    /// A 200 with this body.
    pub fn ok(body: Value) -> Self {
        Reply { status: 200, body }
    }

    /// An AWS JSON-protocol error (`__type` names it).
    pub fn error(status: u16, kind: &str, message: &str) -> Self {
        Reply {
            status,
            body: serde_json::json!({"__type": kind, "Message": message}),
        }
    }
}

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Request {
    /// The operation.
    pub operation: String,
    /// The JSON body.
    pub body: Value,
}

type Scripts = Arc<Mutex<BTreeMap<String, VecDeque<Reply>>>>;

/// The running server.
#[derive(Debug)]
pub struct Scripted {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    scripts: Scripts,
    requests: Arc<Mutex<Vec<Request>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Scripted {
    /// Starts a server with no scripts (every operation answers 500 until scripted).
    pub async fn start() -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let scripts: Scripts = Default::default();
        let requests: Arc<Mutex<Vec<Request>>> = Default::default();
        let (s, r) = (scripts.clone(), requests.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let (s, r) = (s.clone(), r.clone());
                tokio::spawn(async move {
                    let _ = serve(socket, s, r).await;
                });
            }
        });
        Scripted {
            endpoint,
            scripts,
            requests,
            task,
        }
    }

    /// Scripts `operation`'s replies, in order (the last one repeats).
    pub fn on(&self, operation: &str, replies: Vec<Reply>) -> &Self {
        self.scripts
            .lock()
            .expect("lock")
            .insert(operation.to_owned(), replies.into());
        self
    }

    /// The requests of one operation so far.
    pub fn requests(&self, operation: &str) -> Vec<Request> {
        self.requests
            .lock()
            .expect("lock")
            .iter()
            .filter(|r| r.operation == operation)
            .cloned()
            .collect()
    }
}

async fn serve(
    socket: tokio::net::TcpStream,
    scripts: Scripts,
    requests: Arc<Mutex<Vec<Request>>>,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut read = BufReader::new(read);
    loop {
        let mut length = 0usize;
        let mut operation = String::new();
        let mut line = String::new();
        // The request line, then headers up to the blank line.
        if read.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        loop {
            line.clear();
            read.read_line(&mut line).await?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = v.trim().parse().unwrap_or(0),
                    "x-amz-target" => {
                        operation = v.trim().rsplit('.').next().unwrap_or_default().to_owned()
                    }
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        read.read_exact(&mut body).await?;
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        requests.lock().expect("lock").push(Request {
            operation: operation.clone(),
            body,
        });
        let reply = {
            let mut scripts = scripts.lock().expect("lock");
            match scripts.get_mut(&operation) {
                Some(q) if q.len() > 1 => q.pop_front().expect("non-empty"),
                Some(q) if q.len() == 1 => q[0].clone(),
                _ => Reply::error(
                    500,
                    "InternalFailure",
                    &format!("{operation} is not scripted"),
                ),
            }
        };
        let text = reply.body.to_string();
        let head = format!(
            "HTTP/1.1 {} X\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nx-amzn-RequestId: scripted\r\n\r\n",
            reply.status,
            text.len()
        );
        write.write_all(head.as_bytes()).await?;
        write.write_all(text.as_bytes()).await?;
        write.flush().await?;
    }
}

/// POSTs JSON to a moto control endpoint (e.g. `/moto-api/static/athena/query-results`).
pub fn moto_post(endpoint: &str, path: &str, body: &Value) {
    use std::io::{Read, Write};
    let host = endpoint.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).expect("moto is up");
    let text = body.to_string();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    )
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    assert!(
        out.starts_with("HTTP/1.1 2") || out.starts_with("HTTP/1.0 2"),
        "moto refused {path}: {out}"
    );
}
