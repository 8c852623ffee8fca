//! Notifications: a Slack-compatible incoming webhook (`notify: webhook:` in floe.yaml).
//!
//! The body is `{"text": ..., "floe": {...}}`: Slack (and Teams' and Mattermost's Slack-style
//! hooks) show `text` and ignore the rest; other receivers get the whole failure in `floe`.

use async_trait::async_trait;
use floe_core::ports::Notifier;
use floe_core::{Error, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// A webhook URL (http or https).
#[derive(Debug, Clone)]
pub struct Webhook {
    url: String,
}

impl Webhook {
    /// A webhook posting to `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Webhook { url: url.into() }
    }
}

#[async_trait]
impl Notifier for Webhook {
    async fn notify(&self, text: &str, detail: &serde_json::Value) -> Result<()> {
        let body = serde_json::json!({"text": text, "floe": detail}).to_string();
        let uri: hyper::Uri = self.url.parse().map_err(|e| {
            Error::Config(format!("notify.webhook '{}' is not a URL: {e}", self.url))
        })?;
        let request = hyper::Request::post(uri)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Error::Internal(e.to_string()))?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| Error::Config(format!("no TLS root certificates for the webhook: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
        let response =
            tokio::time::timeout(std::time::Duration::from_secs(10), client.request(request))
                .await
                .map_err(|_| {
                    Error::Transient(format!("the webhook {} did not answer in 10 s", self.url))
                })?
                .map_err(|e| Error::Transient(format!("calling the webhook {}: {e}", self.url)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response
            .into_body()
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        let e = format!(
            "the webhook {} answered {status}: {}",
            self.url,
            text.trim()
        );
        if status.is_server_error() || status.as_u16() == 429 {
            Err(Error::Transient(e))
        } else {
            Err(Error::Config(e))
        }
    }
}
