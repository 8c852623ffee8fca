//! The landing folder as an object store: `bucket` is a name for the folder, keys are paths below
//! it. Writes go to a temporary file and are renamed into place, so a reader never sees half a
//! file.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use floe_core::ports::ObjectStore;
use floe_core::{Error, ObjectRef, Result};

/// A folder holding objects.
#[derive(Debug, Clone)]
pub struct LocalStore {
    bucket: String,
    root: PathBuf,
}

impl LocalStore {
    /// The folder `root`, named `bucket` in events and batch ids.
    pub fn new(bucket: &str, root: &Path) -> Self {
        LocalStore {
            bucket: bucket.to_owned(),
            root: root.to_owned(),
        }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file behind a key; keys may not climb out of the folder.
    pub fn path(&self, key: &str) -> Result<PathBuf> {
        if key.split('/').any(|p| p == ".." || p.is_empty()) || key.starts_with('/') {
            return Err(Error::InvalidData {
                file: key.to_owned(),
                detail: "object keys are relative paths without '..' or empty parts".into(),
            });
        }
        Ok(self.root.join(key))
    }

    /// The keys under a prefix with their file metadata, in key order, without reading contents
    /// (hidden files, such as a write in progress, are left out).
    pub fn files(&self, prefix: &str) -> Result<Vec<(String, std::fs::Metadata)>> {
        fn walk(dir: &Path, out: &mut Vec<(PathBuf, std::fs::Metadata)>) -> std::io::Result<()> {
            if !dir.exists() {
                return Ok(());
            }
            for e in std::fs::read_dir(dir)? {
                let e = e?;
                let p = e.path();
                let meta = e.metadata()?;
                if meta.is_dir() {
                    walk(&p, out)?;
                } else if !p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'))
                {
                    out.push((p, meta));
                }
            }
            Ok(())
        }
        let mut files = Vec::new();
        walk(&self.root, &mut files).map_err(io("listing", &self.root))?;
        let mut out: Vec<(String, std::fs::Metadata)> = files
            .into_iter()
            .filter_map(|(f, meta)| {
                let key = f
                    .strip_prefix(&self.root)
                    .ok()?
                    .to_string_lossy()
                    .replace('\\', "/");
                key.starts_with(prefix).then_some((key, meta))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Removes the temporary files of copies that never finished (`.<id>.tmp`, left by a
    /// `floe land` killed mid-copy) under `prefix` and older than `older_than`: younger ones may
    /// be a copy in progress. Returns how many went.
    pub fn remove_stale_temp_files(
        &self,
        prefix: &str,
        older_than: std::time::Duration,
    ) -> Result<usize> {
        let mut removed = 0;
        let mut stack = vec![self.root.join(prefix)];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                let Ok(meta) = e.metadata() else { continue };
                if meta.is_dir() {
                    stack.push(p);
                    continue;
                }
                let name = e.file_name();
                let name = name.to_string_lossy();
                let old = meta
                    .modified()
                    .ok()
                    .and_then(|m| m.elapsed().ok())
                    .is_some_and(|age| age >= older_than);
                if name.starts_with('.') && name.ends_with(".tmp") && old {
                    std::fs::remove_file(&p).map_err(io("removing", &p))?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// The identity of the object at `key` (its content hash as etag).
    pub fn object_ref(&self, key: &str, bytes: &[u8]) -> ObjectRef {
        ObjectRef::local(&self.bucket, key, bytes)
    }

    /// The identity of the object stored at `key`, its file read as it comes (never held whole).
    pub fn identify(&self, key: &str) -> Result<ObjectRef> {
        let path = self.path(key)?;
        let file = std::fs::File::open(&path).map_err(io("reading", &path))?;
        ObjectRef::local_read(&self.bucket, key, file, |_| Ok(())).map_err(io("reading", &path))
    }

    /// Copies the file `from` in as the object `key`, block by block (a file larger than memory
    /// is never held whole), each block's size passed to `progress`; readers never see half of
    /// it.
    pub fn put_file(
        &self,
        key: &str,
        from: &Path,
        mut progress: impl FnMut(u64),
    ) -> Result<ObjectRef> {
        use std::io::Write as _;
        let path = self.path(key)?;
        let dir = path.parent().expect("a key names a file in a folder");
        std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
        let source = std::fs::File::open(from).map_err(io("reading", from))?;
        let tmp = dir.join(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
        let copied = (|| {
            let mut out = std::fs::File::create(&tmp)?;
            let object = ObjectRef::local_read(&self.bucket, key, source, |block| {
                progress(block.len() as u64);
                out.write_all(block)
            })?;
            out.flush()?;
            Ok::<_, std::io::Error>(object)
        })();
        let object = match copied {
            Ok(o) => o,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(io("copying", from)(e));
            }
        };
        std::fs::rename(&tmp, &path).map_err(io("renaming into", &path))?;
        Ok(object)
    }
}

fn io(what: &str, path: &Path) -> impl Fn(std::io::Error) -> Error {
    let msg = format!("{what} {}", path.display());
    move |e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound(format!("{msg}: no such file")),
        _ => Error::Transient(format!("{msg}: {e}")),
    }
}

#[async_trait]
impl ObjectStore for LocalStore {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<ObjectRef> {
        let path = self.path(key)?;
        let dir = path.parent().expect("a key names a file in a folder");
        std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
        let tmp = dir.join(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
        std::fs::write(&tmp, &bytes).map_err(io("writing", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io("renaming into", &path))?;
        Ok(self.object_ref(key, &bytes))
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>> {
        let path = self.path(key)?;
        std::fs::read(&path).map_err(io("reading", &path))
    }

    async fn copy_from(&self, from: &dyn ObjectStore, from_key: &str, key: &str) -> Result<()> {
        match from.local_path(from_key) {
            Some(file) => self.put_file(key, &file, |_| {}).map(|_| ()),
            None => {
                let bytes = from.get(from_key).await?;
                self.put(key, bytes).await.map(|_| ())
            }
        }
    }

    fn local_path(&self, key: &str) -> Option<PathBuf> {
        self.path(key).ok()
    }

    async fn open(&self, key: &str) -> Result<Box<dyn std::io::Read + Send>> {
        let path = self.path(key)?;
        let file = std::fs::File::open(&path).map_err(io("reading", &path))?;
        Ok(Box::new(file))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectRef>> {
        let mut out = Vec::new();
        for (key, _) in self.files(prefix)? {
            out.push(self.identify(&key)?);
        }
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("deleting", &path)(e)),
        }
    }
}
