//! An S3 bucket as an [`ObjectStore`]: the landing zone and the quarantine in AWS.

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use floe_core::ports::ObjectStore;
use floe_core::{Error, ObjectRef, Result};

use crate::sdk_error;

/// One bucket.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
}

/// S3 quotes etags (`"abc"`); events carry them bare. floe keeps them bare so an upload's
/// identity and its event's agree (the batch id is derived from it).
fn bare_etag(etag: Option<&str>) -> Option<String> {
    etag.map(|e| e.trim_matches('"').to_owned())
}

impl S3Store {
    /// The bucket `bucket`.
    pub fn new(client: aws_sdk_s3::Client, bucket: &str) -> Self {
        S3Store {
            client,
            bucket: bucket.to_owned(),
        }
    }

    /// The identity of the object at `key` now (size, etag, version).
    /// Writes an object only if there is none at `key` (S3's conditional write,
    /// `If-None-Match: *`); false when one was there.
    pub async fn put_if_absent(&self, key: &str, bytes: Vec<u8>) -> Result<bool> {
        match self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .if_none_match("*")
            .body(ByteStream::from(bytes))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => {
                let precondition = e
                    .raw_response()
                    .is_some_and(|r| matches!(r.status().as_u16(), 412 | 409));
                if precondition {
                    Ok(false)
                } else {
                    Err(sdk_error::map(
                        &format!("S3 PutObject (if absent) s3://{}/{key}", self.bucket),
                        e,
                    ))
                }
            }
        }
    }

    /// The body of the object at `key` as it arrives, with the name of the call for errors.
    async fn body(&self, key: &str) -> Result<(String, ByteStream)> {
        let what = format!("S3 GetObject s3://{}/{key}", self.bucket);
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| sdk_error::map(&what, e))?;
        Ok((what, out.body))
    }

    pub async fn head(&self, key: &str) -> Result<ObjectRef> {
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| sdk_error::map(&format!("S3 HeadObject s3://{}/{key}", self.bucket), e))?;
        Ok(ObjectRef {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            version_id: out.version_id().map(str::to_owned),
            etag: bare_etag(out.e_tag()),
            size: out.content_length().unwrap_or_default().max(0) as u64,
        })
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<ObjectRef> {
        let size = bytes.len() as u64;
        let out = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| sdk_error::map(&format!("S3 PutObject s3://{}/{key}", self.bucket), e))?;
        Ok(ObjectRef {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            version_id: out.version_id().map(str::to_owned),
            etag: bare_etag(out.e_tag()),
            size,
        })
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>> {
        let (what, body) = self.body(key).await?;
        let body = body
            .collect()
            .await
            .map_err(|e| Error::Transient(format!("{what}: reading the body: {e}")))?;
        Ok(body.into_bytes().to_vec())
    }

    async fn copy_from(&self, from: &dyn ObjectStore, from_key: &str, key: &str) -> Result<()> {
        // Between buckets, on S3's side: the object never passes through this process.
        self.client
            .copy_object()
            .bucket(&self.bucket)
            .key(key)
            .copy_source(format!("{}/{}", from.bucket(), encode_key(from_key)))
            .send()
            .await
            .map_err(|e| {
                sdk_error::map(
                    &format!(
                        "S3 CopyObject s3://{}/{from_key} to s3://{}/{key}",
                        from.bucket(),
                        self.bucket
                    ),
                    e,
                )
            })?;
        Ok(())
    }

    async fn open(&self, key: &str) -> Result<Box<dyn std::io::Read + Send>> {
        let (what, mut body) = self.body(key).await?;
        // The body comes on this runtime and is read on a blocking thread: a few blocks held
        // between them, never the whole object.
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        tokio::spawn(async move {
            while let Some(block) = body.next().await {
                let block = block
                    .map_err(|e| std::io::Error::other(format!("{what}: reading the body: {e}")));
                let failed = block.is_err();
                if tx.send(block).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Box::new(BodyReader {
            blocks: rx,
            current: bytes::Bytes::new(),
        }))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectRef>> {
        let what = format!("S3 ListObjectsV2 s3://{}/{prefix}", self.bucket);
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error::map(&what, e))?;
            for o in page.contents() {
                let Some(key) = o.key() else { continue };
                out.push(ObjectRef {
                    bucket: self.bucket.clone(),
                    key: key.to_owned(),
                    version_id: None,
                    etag: bare_etag(o.e_tag()),
                    size: o.size().unwrap_or_default().max(0) as u64,
                });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| {
                sdk_error::map(&format!("S3 DeleteObject s3://{}/{key}", self.bucket), e)
            })?;
        Ok(())
    }
}

/// An object's body as a blocking reader, fed block by block by a task on the runtime.
struct BodyReader {
    blocks: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    current: bytes::Bytes,
}

impl std::io::Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.blocks.blocking_recv() {
                Some(block) => self.current = block?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// A key as CopyObject's source names it: URL-encoded, its slashes kept.
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod copy_source_tests {
    #[test]
    fn copy_sources_are_url_encoded_with_their_slashes() {
        assert_eq!(
            super::encode_key("landing/crm/people/2026-11-01T06:00:00Z/a b+c.csv"),
            "landing/crm/people/2026-11-01T06%3A00%3A00Z/a%20b%2Bc.csv"
        );
        assert_eq!(super::encode_key("k/é"), "k/%C3%A9");
    }
}
