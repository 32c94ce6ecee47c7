//! A bucket as the rest of Cairn uses it: blocking calls (Cairn's
//! background work runs on threads of its own) over the `object_store`
//! crate's S3 and local-filesystem implementations, with keys under the
//! configured prefix.
//!
//! Contracts: every call blocks on a small runtime owned by the bucket,
//! so it must not be made from inside another async runtime's thread.
//! Large files go up in 16 MiB parts (multipart uploads on S3), so memory
//! does not follow the file size. A missing object reads as `None`, not
//! an error.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as Key;
use object_store::{ObjectStore, PutPayload, WriteMultipart};

use crate::config::BucketConfig;
use crate::error::{ObjstoreError, Result};

/// Files up to this size go up in one request; larger ones in parts of it.
const PART: usize = 16 << 20;

/// One object as a listing gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Relative to the bucket's prefix.
    pub key: String,
    pub size: u64,
    /// Unix seconds of its last modification.
    pub modified_s: i64,
}

/// An opened bucket.
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    rt: tokio::runtime::Runtime,
    desc: String,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.desc)
    }
}

fn err<'k>(
    op: &'static str,
    key: &'k Key,
) -> impl FnOnce(object_store::Error) -> ObjstoreError + 'k {
    move |e| ObjstoreError::Bucket {
        op,
        key: key.to_string(),
        source: Box::new(e),
    }
}

impl Bucket {
    /// Opens the bucket `cfg` describes (a filesystem one's directory is
    /// created). Nothing is requested from the server yet: see
    /// [`Bucket::check`].
    pub fn open(cfg: &BucketConfig) -> Result<Self> {
        // Two workers: queries read by byte range from several threads at
        // once, beside the shipper's uploads.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cairn-bucket")
            .enable_all()
            .build()
            .map_err(ObjstoreError::Runtime)?;
        let (store, prefix, desc): (Arc<dyn ObjectStore>, String, String) = match cfg {
            BucketConfig::Filesystem { directory, prefix } => {
                std::fs::create_dir_all(directory).map_err(|source| ObjstoreError::Local {
                    path: directory.clone(),
                    source,
                })?;
                let fs = object_store::local::LocalFileSystem::new_with_prefix(directory).map_err(
                    |e| ObjstoreError::Config {
                        what: format!("FILESYSTEM directory {}: {e}", directory.display()),
                    },
                )?;
                (
                    Arc::new(fs),
                    prefix.clone(),
                    format!("filesystem bucket {}", directory.display()),
                )
            }
            #[cfg(not(feature = "s3"))]
            BucketConfig::S3(c) => {
                return Err(ObjstoreError::Config {
                    what: format!("S3 bucket {}: built without S3 support", c.bucket),
                })
            }
            #[cfg(feature = "s3")]
            BucketConfig::S3(c) => {
                let scheme = if c.insecure { "http" } else { "https" };
                let mut b = object_store::aws::AmazonS3Builder::new()
                    .with_bucket_name(&c.bucket)
                    .with_endpoint(format!("{scheme}://{}", c.endpoint))
                    .with_region(&c.region)
                    .with_allow_http(c.insecure)
                    .with_virtual_hosted_style_request(c.virtual_hosted);
                if !c.access_key.is_empty() {
                    b = b
                        .with_access_key_id(&c.access_key)
                        .with_secret_access_key(&c.secret_key);
                }
                if !c.session_token.is_empty() {
                    b = b.with_token(&c.session_token);
                }
                let s3 = b.build().map_err(|e| ObjstoreError::Config {
                    what: format!("S3 bucket {}: {e}", c.bucket),
                })?;
                (
                    Arc::new(s3),
                    c.prefix.clone(),
                    format!("S3 bucket {} at {}", c.bucket, c.endpoint),
                )
            }
        };
        Ok(Self {
            store,
            prefix,
            rt,
            desc,
        })
    }

    /// The key of `rel` (`/`-separated) under the prefix.
    pub fn key(&self, rel: &str) -> Key {
        let rel = rel.trim_matches('/');
        if self.prefix.is_empty() {
            Key::from(rel)
        } else {
            Key::from(format!("{}/{rel}", self.prefix))
        }
    }

    /// Lists the top level once: a wrong endpoint, bucket or credentials
    /// fail here, with the server's answer.
    pub fn check(&self) -> Result<()> {
        let k = self.key("");
        self.rt
            .block_on(self.store.list_with_delimiter(Some(&k)))
            .map(|_| ())
            .map_err(err("list", &k))
    }

    /// Writes `data` at `rel`.
    pub fn put(&self, rel: &str, data: Bytes) -> Result<()> {
        let k = self.key(rel);
        self.rt
            .block_on(self.store.put(&k, PutPayload::from(data)))
            .map(|_| ())
            .map_err(err("put", &k))
    }

    /// Uploads the local file `path` to `rel`; returns its size.
    pub fn upload_file(&self, rel: &str, path: &Path) -> Result<u64> {
        use std::io::Read;
        let k = self.key(rel);
        let local = |source| ObjstoreError::Local {
            path: path.to_path_buf(),
            source,
        };
        let mut f = std::fs::File::open(path).map_err(local)?;
        let size = f.metadata().map_err(local)?.len();
        if size <= PART as u64 {
            let mut buf = Vec::with_capacity(size as usize);
            f.read_to_end(&mut buf).map_err(local)?;
            self.put(rel, Bytes::from(buf))?;
            return Ok(size);
        }
        self.rt.block_on(async {
            let up = self.store.put_multipart(&k).await.map_err(err("put", &k))?;
            let mut w = WriteMultipart::new_with_chunk_size(up, PART);
            let mut buf = vec![0u8; PART];
            loop {
                let n = f.read(&mut buf).map_err(local)?;
                let Some(part) = buf.get(..n).filter(|p| !p.is_empty()) else {
                    break;
                };
                w.wait_for_capacity(4).await.map_err(err("put", &k))?;
                w.write(part);
            }
            w.finish().await.map(|_| size).map_err(err("put", &k))
        })
    }

    /// Reads `rel`; `None` when there is no such object.
    pub fn get(&self, rel: &str) -> Result<Option<Bytes>> {
        let k = self.key(rel);
        self.rt.block_on(async {
            match self.store.get(&k).await {
                Ok(r) => r.bytes().await.map(Some).map_err(err("get", &k)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(err("get", &k)(e)),
            }
        })
    }

    /// The bytes `range` of `rel` (the object must exist and hold them).
    pub fn get_range(&self, rel: &str, range: std::ops::Range<u64>) -> Result<Bytes> {
        let k = self.key(rel);
        self.rt
            .block_on(self.store.get_range(&k, range))
            .map_err(err("get range of", &k))
    }

    /// The bytes of each of `ranges` (ascending) of `rel`, fetched up to
    /// ten at once; ranges less than `coalesce` bytes apart share one
    /// request.
    pub fn get_ranges(
        &self,
        rel: &str,
        ranges: &[std::ops::Range<u64>],
        coalesce: u64,
    ) -> Result<Vec<Bytes>> {
        let k = self.key(rel);
        let store = &self.store;
        self.rt
            .block_on(object_store::coalesce_ranges(
                ranges,
                |r| store.get_range(&k, r),
                coalesce,
            ))
            .map_err(err("get ranges of", &k))
    }

    /// Whether `rel` exists.
    pub fn exists(&self, rel: &str) -> Result<bool> {
        let k = self.key(rel);
        match self.rt.block_on(self.store.head(&k)) {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(err("head", &k)(e)),
        }
    }

    /// The names directly under `rel` that hold objects (the "directories"),
    /// sorted.
    pub fn list_dirs(&self, rel: &str) -> Result<Vec<String>> {
        let k = self.key(rel);
        let r = self
            .rt
            .block_on(self.store.list_with_delimiter(Some(&k)))
            .map_err(err("list", &k))?;
        let mut out: Vec<String> = r
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Every object under `rel` (recursively), sorted by key: keys
    /// relative to the prefix, with their size and last modification.
    pub fn list_objects(&self, rel: &str) -> Result<Vec<ObjectInfo>> {
        let k = self.key(rel);
        let metas: Vec<object_store::ObjectMeta> = self
            .rt
            .block_on(self.store.list(Some(&k)).try_collect())
            .map_err(err("list", &k))?;
        let skip = if self.prefix.is_empty() {
            0
        } else {
            self.prefix.len() + 1
        };
        let mut out: Vec<ObjectInfo> = metas
            .into_iter()
            .map(|m| ObjectInfo {
                key: m.location.to_string().get(skip..).unwrap_or("").to_owned(),
                size: m.size,
                modified_s: m.last_modified.timestamp(),
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Every object key under `rel` (recursively), relative to the
    /// prefix, sorted.
    pub fn list_all(&self, rel: &str) -> Result<Vec<String>> {
        Ok(self.list_objects(rel)?.into_iter().map(|o| o.key).collect())
    }

    /// Deletes `rel` (a missing object is not an error).
    pub fn delete(&self, rel: &str) -> Result<()> {
        let k = self.key(rel);
        match self.rt.block_on(self.store.delete(&k)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(err("delete", &k)(e)),
        }
    }
}
