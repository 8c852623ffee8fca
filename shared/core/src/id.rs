//! Identifiers users and services pass around: layers, tables, objects, batches and runs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// The lake's layers: bronze keeps every extract, silver the standardised history, gold the models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// Every extract as delivered, plus batch metadata.
    Bronze,
    /// Standardised, full change history (SCD2).
    Silver,
    /// Conformed models.
    Gold,
}

impl Layer {
    /// The namespace of a source's tables in this layer: `bronze_<source>`, `silver_<source>`,
    /// and `gold` for every model.
    pub fn namespace(self, source: &str) -> String {
        match self {
            Layer::Bronze => format!("bronze_{source}"),
            Layer::Silver => format!("silver_{source}"),
            Layer::Gold => "gold".to_owned(),
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Bronze => "bronze",
            Layer::Silver => "silver",
            Layer::Gold => "gold",
        })
    }
}

/// Checks a source, table, model or namespace name: lowercase letters, digits and underscores,
/// starting with a letter, as Glue and Athena accept them unquoted.
pub fn check_identifier(what: &str, name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 255;
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "{what} name '{name}' is not valid: use lowercase letters, digits and underscores, \
             starting with a letter (for example 'people' or 'case_notes')"
        )))
    }
}

/// A table in the lake: `namespace.name`, for example `silver_nomis.people`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TableRef {
    /// The namespace (Glue database): `bronze_<source>`, `silver_<source>` or `gold`.
    pub namespace: String,
    /// The table name within the namespace.
    pub name: String,
}

impl TableRef {
    /// A table from its namespace and name, both checked.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Result<Self> {
        let t = TableRef {
            namespace: namespace.into(),
            name: name.into(),
        };
        check_identifier("namespace", &t.namespace)?;
        check_identifier("table", &t.name)?;
        Ok(t)
    }

    /// The table of `source.table` in `layer`.
    pub fn in_layer(layer: Layer, source: &str, table: &str) -> Result<Self> {
        TableRef::new(layer.namespace(source), table)
    }

    /// The layer the table belongs to, by its namespace; `None` for floe's own tables
    /// (`floe_audit`) and anything else outside the three layers.
    pub fn layer(&self) -> Option<Layer> {
        if self.namespace == "gold" {
            return Some(Layer::Gold);
        }
        let (prefix, source) = self.namespace.split_once('_')?;
        if source.is_empty() {
            return None;
        }
        match prefix {
            "bronze" => Some(Layer::Bronze),
            "silver" => Some(Layer::Silver),
            _ => None,
        }
    }

    /// The source system of a bronze or silver table (`nomis` for `silver_nomis.people`).
    pub fn source(&self) -> Option<&str> {
        match self.layer()? {
            Layer::Bronze | Layer::Silver => self.namespace.split_once('_').map(|(_, s)| s),
            Layer::Gold => None,
        }
    }

    /// The source table a bronze or silver table holds, as the config names it
    /// (`nomis.people` for `silver_nomis.people`).
    pub fn source_table(&self) -> Option<String> {
        self.source().map(|s| format!("{s}.{}", self.name))
    }

    /// The same source table in another layer (`bronze_nomis.people` -> `silver_nomis.people`);
    /// `None` unless this is a bronze or silver table.
    pub fn in_other_layer(&self, layer: Layer) -> Option<TableRef> {
        let source = self.source()?;
        Some(TableRef {
            namespace: layer.namespace(source),
            name: self.name.clone(),
        })
    }
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.namespace, self.name)
    }
}

impl FromStr for TableRef {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.split_once('.') {
            Some((ns, name)) if !name.contains('.') => TableRef::new(ns, name),
            _ => Err(Error::Config(format!(
                "'{s}' is not a table name: write it as namespace.table, for example silver_nomis.people"
            ))),
        }
    }
}

/// An object in a bucket (or the local landing folder), as an S3 event names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    /// The bucket (locally: the project's landing root).
    pub bucket: String,
    /// The key, not URL-encoded.
    pub key: String,
    /// The object version, when the bucket is versioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// The entity tag (content hash for single-part uploads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Size in bytes.
    #[serde(default)]
    pub size: u64,
}

impl ObjectRef {
    /// An object held locally (the embedded landing zone), identified by its content: the same
    /// bytes at the same key are the same object, as an unversioned S3 object's etag makes them.
    pub fn local(bucket: &str, key: &str, bytes: &[u8]) -> Self {
        ObjectRef {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version_id: None,
            etag: Some(hex::encode(&Sha256::digest(bytes)[..16])),
            size: bytes.len() as u64,
        }
    }

    /// [`ObjectRef::local`] of the bytes `reader` yields, read as they come (a file larger than
    /// memory), each block passed to `seen` as well (a copy, a progress count).
    pub fn local_read(
        bucket: &str,
        key: &str,
        mut reader: impl std::io::Read,
        mut seen: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<Self> {
        let mut hash = Sha256::new();
        let mut size = 0u64;
        let mut block = vec![0u8; 1 << 20];
        loop {
            let n = match reader.read(&mut block) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hash.update(&block[..n]);
            seen(&block[..n])?;
            size += n as u64;
        }
        Ok(ObjectRef {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version_id: None,
            etag: Some(hex::encode(&hash.finalize()[..16])),
            size,
        })
    }
}

/// The identity of one landed file's journey through the pipeline.
///
/// Derived from bucket, key and object version (or etag when unversioned), so two deliveries of
/// the same S3 event name the same batch and every stage can recognise a replay.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BatchId(String);

impl TryFrom<String> for BatchId {
    type Error = Error;

    fn try_from(s: String) -> Result<Self> {
        BatchId::parse(&s)
    }
}

impl From<BatchId> for String {
    fn from(b: BatchId) -> String {
        b.0
    }
}

impl BatchId {
    /// The batch id of a landed object.
    pub fn for_object(object: &ObjectRef) -> Self {
        let mut h = Sha256::new();
        for part in [
            object.bucket.as_str(),
            object.key.as_str(),
            object.version_id.as_deref().unwrap_or(""),
            object
                .etag
                .as_deref()
                .map(|e| e.trim_matches('"'))
                .unwrap_or(""),
        ] {
            h.update(part.as_bytes());
            // A separator that cannot occur in S3 keys keeps ("a","bc") apart from ("ab","c").
            h.update([0u8]);
        }
        let digest = h.finalize();
        BatchId(format!("b{}", hex::encode(&digest[..12])))
    }

    /// A batch id derived from parts (a model build's chunk, say): the same parts always give
    /// the same id, so a redone write is recognised as committed already.
    pub fn derive(parts: &[&str]) -> Self {
        let mut h = Sha256::new();
        for part in parts {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        let digest = h.finalize();
        BatchId(format!("b{}", hex::encode(&digest[..12])))
    }

    /// A batch id from its string form (as stored in snapshot summaries and messages).
    pub fn parse(s: &str) -> Result<Self> {
        let ok = s.len() == 25
            && s.starts_with('b')
            && s[1..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        if ok {
            Ok(BatchId(s.to_owned()))
        } else {
            Err(Error::MalformedMessage(format!(
                "'{s}' is not a batch id (expected 'b' and 24 lowercase hex digits)"
            )))
        }
    }

    /// The string form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One invocation of the pipeline (a `floe run`, a landed file's chain, a retry).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(String);

impl RunId {
    /// A fresh, time-ordered run id.
    pub fn new() -> Self {
        RunId(format!("r{}", uuid::Uuid::now_v7().simple()))
    }

    /// A run id from its string form.
    pub fn from_string(s: impl Into<String>) -> Self {
        RunId(s.into())
    }

    /// The string form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for RunId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_knows_its_layer_and_source() {
        let silver: TableRef = "silver_nomis.people".parse().unwrap();
        assert_eq!(silver.layer(), Some(Layer::Silver));
        assert_eq!(silver.source(), Some("nomis"));
        assert_eq!(silver.source_table().as_deref(), Some("nomis.people"));
        let bronze = silver.in_other_layer(Layer::Bronze).unwrap();
        assert_eq!(bronze.to_string(), "bronze_nomis.people");
        assert_eq!(bronze.layer(), Some(Layer::Bronze));
        let gold: TableRef = "gold.people_daily".parse().unwrap();
        assert_eq!((gold.layer(), gold.source()), (Some(Layer::Gold), None));
        let audit: TableRef = "floe_audit.files".parse().unwrap();
        assert_eq!((audit.layer(), audit.source_table()), (None, None));
        assert_eq!(audit.in_other_layer(Layer::Silver), None);
    }

    fn obj(key: &str, version: Option<&str>, etag: Option<&str>) -> ObjectRef {
        ObjectRef {
            bucket: "landing".into(),
            key: key.into(),
            version_id: version.map(Into::into),
            etag: etag.map(Into::into),
            size: 10,
        }
    }

    #[test]
    fn batch_id_is_deterministic_and_sensitive_to_each_part() {
        let a = BatchId::for_object(&obj("landing/nomis/people/1/a.csv", Some("v1"), None));
        let again = BatchId::for_object(&obj("landing/nomis/people/1/a.csv", Some("v1"), None));
        assert_eq!(a, again);
        let other_version =
            BatchId::for_object(&obj("landing/nomis/people/1/a.csv", Some("v2"), None));
        let other_key = BatchId::for_object(&obj("landing/nomis/people/2/a.csv", Some("v1"), None));
        assert_ne!(a, other_version);
        assert_ne!(a, other_key);
        // The size is not part of the identity: the same object version is the same batch.
        let mut bigger = obj("landing/nomis/people/1/a.csv", Some("v1"), None);
        bigger.size = 99;
        assert_eq!(a, BatchId::for_object(&bigger));
        assert_eq!(BatchId::parse(a.as_str()).unwrap(), a);
    }

    #[test]
    fn local_objects_are_identified_by_key_and_content() {
        let a = ObjectRef::local("landing", "k", b"abc");
        assert_eq!(
            BatchId::for_object(&a),
            BatchId::for_object(&ObjectRef::local("landing", "k", b"abc"))
        );
        assert_ne!(
            BatchId::for_object(&a),
            BatchId::for_object(&ObjectRef::local("landing", "k", b"abd"))
        );
        assert_eq!(a.size, 3);
        let mut copied = Vec::new();
        let read = ObjectRef::local_read("landing", "k", &b"abc"[..], |b| {
            copied.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        assert_eq!(read, a, "read as it comes, the same identity");
        assert_eq!(copied, b"abc");
    }

    #[test]
    fn etag_quotes_do_not_change_the_batch() {
        let quoted = BatchId::for_object(&obj("k", None, Some("\"abc\"")));
        let bare = BatchId::for_object(&obj("k", None, Some("abc")));
        assert_eq!(quoted, bare);
    }

    #[test]
    fn parts_are_separated() {
        let mut x = obj("bc", None, None);
        x.bucket = "a".into();
        let mut y = obj("c", None, None);
        y.bucket = "ab".into();
        assert_ne!(BatchId::for_object(&x), BatchId::for_object(&y));
    }

    #[test]
    fn table_refs_parse_and_reject_bad_names() {
        let t: TableRef = "silver_nomis.people".parse().unwrap();
        assert_eq!(
            t,
            TableRef::in_layer(Layer::Silver, "nomis", "people").unwrap()
        );
        assert_eq!(t.to_string(), "silver_nomis.people");
        assert!("people".parse::<TableRef>().is_err());
        assert!("a.b.c".parse::<TableRef>().is_err());
        let err = "Silver.People".parse::<TableRef>().unwrap_err().to_string();
        assert!(err.contains("lowercase"), "{err}");
        assert!(BatchId::parse("nope").is_err());
    }
}
