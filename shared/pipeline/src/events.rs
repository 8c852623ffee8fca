//! S3 "Object Created" events, in the two shapes AWS delivers them: EventBridge events (the
//! default route: bucket -> EventBridge rule -> SQS) and S3 notification records (bucket -> SQS).
//!
//! Parsed by hand from JSON rather than with `aws_lambda_events`' S3 types: moto (and some real
//! notifications) omit fields those types require, and one record must never fail its
//! neighbours. The local event sources emit the EventBridge shape.

use chrono::{DateTime, Utc};
use floe_core::{Error, ObjectRef, Result};
use serde_json::{Value, json};

/// What an event says happened.
#[derive(Debug, Clone, PartialEq)]
pub enum S3Event {
    /// Objects were created (one per record).
    Created(Vec<ObjectRef>),
    /// Something floe does not act on (`s3:TestEvent`, tag changes, deletes), with its name.
    Ignored(String),
    /// `{"floe": "reconcile"}` (the stack's scheduled rule): land every file of the landing zone
    /// that the file ledger does not know, in case its own event never came.
    Reconcile,
}

/// The body of a reconcile message.
pub const RECONCILE: &str = r#"{"floe":"reconcile"}"#;

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// Decodes an S3 notification key: URL-encoded, with `+` for a space.
fn decode_key(raw: &str) -> Result<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let b = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        Error::MalformedMessage(format!("bad escape in object key '{raw}'"))
                    })?;
                out.push(b);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out)
        .map_err(|_| Error::MalformedMessage(format!("object key '{raw}' is not UTF-8")))
}

/// An object version from an event: S3 reports `"null"` for an object of an unversioned
/// bucket, which is no version at all (so the batch id matches the uploader's view).
fn version(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .filter(|v| !v.is_empty() && *v != "null")
        .map(str::to_owned)
}

/// Parses one queue message body holding an S3 event.
pub fn parse(body: &str) -> Result<S3Event> {
    let v: Value = serde_json::from_str(body)
        .map_err(|e| Error::MalformedMessage(format!("not JSON ({e})")))?;
    if v.get("floe").and_then(Value::as_str) == Some("reconcile") {
        return Ok(S3Event::Reconcile);
    }
    // EventBridge.
    if let Some(kind) = v.get("detail-type").and_then(Value::as_str) {
        if kind != "Object Created" {
            return Ok(S3Event::Ignored(kind.to_owned()));
        }
        let bucket = str_at(&v, &["detail", "bucket", "name"]).ok_or_else(|| {
            Error::MalformedMessage("EventBridge event without detail.bucket.name".into())
        })?;
        let object = v.pointer("/detail/object").ok_or_else(|| {
            Error::MalformedMessage("EventBridge event without detail.object".into())
        })?;
        let key = object.get("key").and_then(Value::as_str).ok_or_else(|| {
            Error::MalformedMessage("EventBridge event without detail.object.key".into())
        })?;
        return Ok(S3Event::Created(vec![ObjectRef {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version_id: version(object.get("version-id")),
            // AWS writes `etag`; moto writes `eTag`.
            etag: object
                .get("etag")
                .or_else(|| object.get("eTag"))
                .and_then(Value::as_str)
                .map(|e| e.trim_matches('"').to_owned()),
            size: object.get("size").and_then(Value::as_u64).unwrap_or(0),
        }]));
    }
    // S3 notification.
    if v.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(S3Event::Ignored("s3:TestEvent".into()));
    }
    if let Some(records) = v.get("Records").and_then(Value::as_array) {
        let mut objects = Vec::new();
        for r in records {
            let name = r.get("eventName").and_then(Value::as_str).unwrap_or("");
            if !name.starts_with("ObjectCreated:") {
                continue;
            }
            let bucket = str_at(r, &["s3", "bucket", "name"]).ok_or_else(|| {
                Error::MalformedMessage("S3 record without s3.bucket.name".into())
            })?;
            let key = str_at(r, &["s3", "object", "key"])
                .ok_or_else(|| Error::MalformedMessage("S3 record without s3.object.key".into()))?;
            let object = &r["s3"]["object"];
            objects.push(ObjectRef {
                bucket: bucket.to_owned(),
                key: decode_key(key)?,
                version_id: version(object.get("versionId")),
                etag: object
                    .get("eTag")
                    .and_then(Value::as_str)
                    .map(|e| e.trim_matches('"').to_owned()),
                size: object.get("size").and_then(Value::as_u64).unwrap_or(0),
            });
        }
        return Ok(if objects.is_empty() {
            S3Event::Ignored("S3 notification without ObjectCreated records".into())
        } else {
            S3Event::Created(objects)
        });
    }
    Err(Error::MalformedMessage(
        "neither an EventBridge event nor an S3 notification".into(),
    ))
}

/// The EventBridge "Object Created" event for an object, as the local event sources emit it.
pub fn object_created(object: &ObjectRef, at: DateTime<Utc>) -> String {
    let mut detail_object = json!({"key": object.key, "size": object.size});
    if let Some(e) = &object.etag {
        detail_object["etag"] = json!(e);
    }
    if let Some(v) = &object.version_id {
        detail_object["version-id"] = json!(v);
    }
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "000000000000",
        "time": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": "local",
        "resources": [format!("arn:aws:s3:::{}", object.bucket)],
        "detail": {
            "version": "0",
            "bucket": {"name": object.bucket},
            "object": detail_object,
            "reason": "PutObject",
        }
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENTBRIDGE: &str = include_str!("../fixtures/eventbridge_object_created.json");
    const S3_RECORDS: &str = include_str!("../fixtures/s3_notification_moto.json");

    #[test]
    fn reads_eventbridge_events() {
        let S3Event::Created(objects) = parse(EVENTBRIDGE).unwrap() else {
            panic!()
        };
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].bucket, "floe-landing");
        assert_eq!(
            objects[0].key,
            "landing/nomis/people/2026-11-01T06:00:00Z/people file.csv"
        );
        assert_eq!(objects[0].size, 284);
        assert_eq!(
            objects[0].version_id.as_deref(),
            Some("3HL4kqtJlcpXroDTDmJ")
        );
    }

    #[test]
    fn reads_s3_notifications_without_the_fields_moto_leaves_out() {
        let S3Event::Created(objects) = parse(S3_RECORDS).unwrap() else {
            panic!()
        };
        assert_eq!(
            objects[0].key,
            "landing/nomis/people/2026-11-01T06:00:00Z/people file.csv"
        );
        assert_eq!(
            objects[0].etag.as_deref(),
            Some("0cc175b9c0f1b6a831c399e269772661")
        );
        assert_eq!(
            parse(r#"{"Service":"Amazon S3","Event":"s3:TestEvent"}"#).unwrap(),
            S3Event::Ignored("s3:TestEvent".into())
        );
        let tags = EVENTBRIDGE.replace("Object Created", "Object Tags Added");
        assert!(matches!(parse(&tags).unwrap(), S3Event::Ignored(_)));
        assert!(parse("{}").is_err());
        assert!(parse("nope").is_err());
    }

    #[test]
    fn reads_moto_eventbridge_events_with_their_spelling() {
        let moto = include_str!("../fixtures/eventbridge_object_created_moto.json");
        let S3Event::Created(objects) = parse(moto).unwrap() else {
            panic!()
        };
        assert_eq!(
            objects[0].etag.as_deref(),
            Some("e5ebd4c02cefbe7955977c67ada242b7")
        );
        // An unversioned bucket's "null" version is no version.
        assert_eq!(objects[0].version_id, None);
    }

    #[test]
    fn what_the_local_sources_emit_round_trips() {
        let o = ObjectRef::local(
            "landing",
            "landing/a/b/2026-11-01T00:00:00Z/x y.csv",
            b"abc",
        );
        let S3Event::Created(back) = parse(&object_created(&o, Utc::now())).unwrap() else {
            panic!()
        };
        assert_eq!(back, vec![o]);
        assert_eq!(decode_key("a%2Fb+c%20d").unwrap(), "a/b c d");
    }
}
