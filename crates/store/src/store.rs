//! `Store`: an opened output root with a synchronous API over object_store.
//!
//! Callers are plain worker threads, so every public method blocks; the store owns a small
//! tokio runtime and runs object_store's futures on it. Do not call it from inside another
//! tokio runtime (tokio forbids blocking there).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arrow_array::RecordBatch;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::error::{Result, StoreError};
use crate::lease::WriterInfo;
use crate::root::{self, OutputRoot, StoreOptions};
use crate::schema::Table;
use crate::session::Session;
use crate::writer::FaultPoint;

/// Folder (outside every table folder) of local temporary files before their rename.
pub(crate) const STAGING: &str = "_staging";
/// Folder of uncommit intents (see the protocol).
pub(crate) const TXN: &str = "_txn";
/// Folder of run provenance files.
pub(crate) const RUNS: &str = "_runs";

/// Above this size a file is uploaded in parts (each part of a multipart upload but the last
/// must be at least 5 MiB on S3).
const SINGLE_PUT_MAX: usize = 32 << 20;
const PART_SIZE: usize = 16 << 20;

/// An opened output root. Cheap to clone; clones share the connection and the runtime.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub root: OutputRoot,
    pub store: Arc<dyn ObjectStore>,
    /// Leases, claims, locks and clock probes (see `root::Opened::coord`).
    pub coord: Arc<dyn ObjectStore>,
    /// Local roots: the coordination objects without automatic folder removal (see
    /// [`Store::delete_many_coord`]).
    pub coord_fs: Option<Arc<object_store::local::LocalFileSystem>>,
    pub prefix: Path,
    pub local: Option<std::path::PathBuf>,
    pub rt: tokio::runtime::Runtime,
    pub fault: Mutex<Option<FaultPoint>>,
    /// Test hook run once by the next recovery before it judges the leases.
    pub before_liveness: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    /// This process's writer session, once started.
    pub session: Mutex<Option<Arc<Session>>>,
    /// Lease contents read so far (they do not change; only their timestamps do).
    pub lease_cache: Mutex<HashMap<String, WriterInfo>>,
    /// Owner of staging files written outside a session (`nolease-<random>`).
    pub anon: String,
    /// Dead writers this process has marked (`_dead/<lease_id>`, see `claims.rs`).
    pub marked_dead: Mutex<std::collections::HashSet<String>>,
    /// Claim sets read so far, by path: (version from the listing, content).
    pub set_cache: Mutex<HashMap<String, (String, Arc<crate::claimsets::ClaimSet>)>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.inner.root)
            .finish_non_exhaustive()
    }
}

/// A file found under the root.
#[derive(Debug, Clone)]
pub(crate) struct FileInfo {
    pub path: Path,
    pub last_modified: SystemTime,
}

impl Store {
    /// Opens a root with default options (S3 settings from the environment).
    pub fn open(root: &OutputRoot) -> Result<Store> {
        Store::open_with(root, StoreOptions::default())
    }

    /// Opens a root with explicit options. Opening does not touch S3; the first request does.
    pub fn open_with(root: &OutputRoot, opts: StoreOptions) -> Result<Store> {
        let opened = root::open(root, &opts)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("synthsweep-store")
            .enable_all()
            .build()?;
        Ok(Store {
            inner: Arc::new(Inner {
                root: root.clone(),
                store: opened.store,
                coord: opened.coord,
                coord_fs: opened.coord_fs,
                prefix: opened.prefix,
                local: opened.local,
                rt,
                fault: Mutex::new(None),
                before_liveness: Mutex::new(None),
                session: Mutex::new(None),
                lease_cache: Mutex::default(),
                anon: format!(
                    "nolease-{}",
                    &uuid::Uuid::new_v4().simple().to_string()[..12]
                ),
                marked_dead: Mutex::default(),
                set_cache: Mutex::default(),
            }),
        })
    }

    /// The root this store writes to.
    pub fn root(&self) -> &OutputRoot {
        &self.inner.root
    }

    /// Test hook: makes the next commit or uncommit stop at `point`, as if the process had
    /// been killed there (the call returns `StoreError::Injected`). Consumed when it fires.
    pub fn inject_fault(&self, point: Option<FaultPoint>) {
        *self.inner.fault.lock().unwrap() = point;
    }

    /// Test hook: the next [`Store::recover`] runs `hook` once, after it has listed the
    /// files it may delete and before it judges who is alive, the moment where another
    /// writer committing and ending would race it. The hook runs on the store's runtime
    /// thread: it must not call this or another `Store` directly (tokio forbids blocking
    /// there); a thread it spawns and joins may.
    pub fn before_recovery_liveness(&self, hook: Option<Box<dyn FnOnce() + Send>>) {
        *self.inner.before_liveness.lock().unwrap() = hook;
    }

    pub(crate) fn check_fault(&self, here: FaultPoint) -> Result<()> {
        let mut f = self.inner.fault.lock().unwrap();
        if *f == Some(here) {
            *f = None;
            return Err(StoreError::Injected(here));
        }
        Ok(())
    }

    pub(crate) fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.inner.rt.block_on(f)
    }

    /// `prefix/part1/part2/...`
    pub(crate) fn path(&self, parts: &[&str]) -> Path {
        let mut p = self.inner.prefix.clone();
        for part in parts {
            p = p.clone().join(*part);
        }
        p
    }

    /// Where a table's file of one batch lives.
    pub(crate) fn table_file(&self, table: Table, batch_id: &str) -> Path {
        self.path(&[table.name(), &format!("part-{batch_id}.parquet")])
    }

    /// The batch id of a table file's name, if it is one of ours.
    pub(crate) fn batch_of(path: &Path) -> Option<String> {
        let name = path.filename()?;
        let id = name.strip_prefix("part-")?.strip_suffix(".parquet")?;
        (!id.is_empty()).then(|| id.to_string())
    }

    /// Every file under `prefix/parts...`, recursively.
    pub(crate) async fn list(&self, parts: &[&str]) -> Result<Vec<FileInfo>> {
        let dir = self.path(parts);
        let metas: Vec<ObjectMeta> = self.inner.store.list(Some(&dir)).try_collect().await?;
        Ok(metas
            .into_iter()
            .map(|m| FileInfo {
                path: m.location,
                last_modified: m.last_modified.into(),
            })
            .collect())
    }

    /// Like [`Store::list`], for the coordination objects (leases, claims, locks).
    pub(crate) async fn list_coord(&self, parts: &[&str]) -> Result<Vec<FileInfo>> {
        let dir = self.path(parts);
        let metas: Vec<ObjectMeta> = self.inner.coord.list(Some(&dir)).try_collect().await?;
        Ok(metas
            .into_iter()
            .map(|m| FileInfo {
                path: m.location,
                last_modified: m.last_modified.into(),
            })
            .collect())
    }

    pub(crate) async fn get_coord(&self, path: &Path) -> Result<Option<Bytes>> {
        get_if_present(self.inner.coord.as_ref(), path).await
    }

    pub(crate) async fn delete_coord(&self, path: &Path) -> Result<()> {
        delete_if_present(self.inner.coord.as_ref(), path).await
    }

    /// Deletes many coordination objects (S3: bulk deletes of up to 1000 keys; local: see
    /// [`delete_local_file`]). Objects already gone are fine.
    pub(crate) async fn delete_many_coord(&self, paths: Vec<Path>) -> Result<()> {
        if paths.is_empty() {
            return Ok(());
        }
        // Local: object_store's automatic clean-up (used for single deletes) tries every
        // folder above a deleted file after each delete, up to the root: for the claims of
        // 3200 tasks, 3200 failed `rmdir` of `_claims/` too. Here each task's folder is
        // removed after its file, and `_claims/` once at the end.
        if let Some(fs) = &self.inner.coord_fs {
            let root = self.inner.local.clone().unwrap_or_default();
            let files = paths
                .iter()
                .map(|p| fs.path_to_filesystem(p))
                .collect::<object_store::Result<Vec<_>>>()?;
            let folders: Vec<std::path::PathBuf> = futures::stream::iter(files)
                .map(|f| {
                    let root = root.clone();
                    async move {
                        tokio::task::spawn_blocking(move || delete_local_file(&root, &f))
                            .await
                            .map_err(|e| StoreError::storage(format!("deleting a file: {e}")))?
                    }
                })
                .buffer_unordered(32)
                .try_collect::<Vec<_>>()
                .await?
                .into_iter()
                .flatten()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            // The folders of the coordination kinds (`_claims/`), if nothing is left in them.
            tokio::task::spawn_blocking(move || {
                for d in folders {
                    let _ = std::fs::remove_dir(d);
                }
            })
            .await
            .map_err(|e| StoreError::storage(format!("deleting a folder: {e}")))?;
            return Ok(());
        }
        let stream = futures::stream::iter(paths.into_iter().map(Ok)).boxed();
        let results: Vec<_> = self.inner.coord.delete_stream(stream).collect().await;
        for r in results {
            match r {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Who owns the staging files this store writes now: the session's lease, or a name
    /// with no lease (files recovery may delete once they are older than a lease).
    pub(crate) fn staging_owner(&self) -> String {
        self.lease_id().unwrap_or_else(|| self.inner.anon.clone())
    }

    pub(crate) async fn get(&self, path: &Path) -> Result<Option<Bytes>> {
        get_if_present(self.inner.store.as_ref(), path).await
    }

    /// Deletes a file; a file already gone is fine (recovery may race a crash).
    pub(crate) async fn delete(&self, path: &Path) -> Result<()> {
        delete_if_present(self.inner.store.as_ref(), path).await
    }

    /// Makes `data` appear at `path` atomically: readers see the old object (or none) or the
    /// whole new one. Local: write under `_staging/<owner>/` (outside the table folders,
    /// named after the writer's lease so recovery knows whose it is) then rename. S3: one
    /// PUT, or a multipart upload, which becomes visible only when completed.
    pub(crate) async fn put_atomic(&self, path: &Path, data: Vec<u8>) -> Result<()> {
        self.put_atomic_fenced(path, data, None).await
    }

    /// [`Store::put_atomic`]; on a local root with `fence` (this writer's lease id), the
    /// staging file is renamed into place only if no other writer has marked this one dead
    /// (`_dead/<lease>`), looked at after the staging file is written. A writer that marks
    /// another dead deletes that writer's staging folder next (see `Store::mark_dead`), so a
    /// writer stopped (SIGSTOP, Slurm's suspend) in the middle of its commit can never land
    /// it after it was judged dead: either its look sees the mark, or its staging file is
    /// gone before its rename, or the rename landed before the folder was deleted, so before
    /// the other writer re-reads the ledger (PROTOCOL.md, "Failure cases").
    pub(crate) async fn put_atomic_fenced(
        &self,
        path: &Path,
        data: Vec<u8>,
        fence: Option<&str>,
    ) -> Result<()> {
        let store = &self.inner.store;
        if self.inner.local.is_some() {
            let tmp = self.path(&[
                STAGING,
                &self.staging_owner(),
                &format!(
                    "{}-{}",
                    uuid::Uuid::new_v4().simple(),
                    path.filename().unwrap_or("file")
                ),
            ]);
            store.put(&tmp, PutPayload::from(data)).await?;
            if let Some(lease) = fence {
                let mark = self.path(&[crate::claims::DEAD, lease]);
                match self.inner.coord.head(&mark).await {
                    Err(object_store::Error::NotFound { .. }) => {}
                    Ok(_) => {
                        let _ = store.delete(&tmp).await;
                        return Err(StoreError::LeaseLost {
                            lease_id: lease.to_string(),
                            why: "another writer found its lease expired and took its tasks over \
                                  (the process was stalled)"
                                .into(),
                            storage: false,
                        });
                    }
                    Err(e) => {
                        let _ = store.delete(&tmp).await;
                        return Err(e.into());
                    }
                }
            }
            if let Err(e) = store.rename(&tmp, path).await {
                let _ = store.delete(&tmp).await;
                return Err(e.into());
            }
            return Ok(());
        }
        if data.len() <= SINGLE_PUT_MAX {
            store.put(path, PutPayload::from(data)).await?;
        } else {
            let mut w =
                WriteMultipart::new_with_chunk_size(store.put_multipart(path).await?, PART_SIZE);
            w.write(&data);
            w.finish().await?;
        }
        Ok(())
    }

    /// A file of this root as a user finds it: the root (local path or `s3://bucket/prefix`)
    /// and the file's path under it.
    pub(crate) fn display_path(&self, path: &Path) -> String {
        match path.prefix_match(&self.inner.prefix) {
            Some(rest) => {
                let rest: Vec<String> = rest.map(|p| p.as_ref().to_string()).collect();
                format!("{}/{}", self.inner.root.display(), rest.join("/"))
            }
            None => path.to_string(),
        }
    }

    /// Reads every record batch of a Parquet file; `None` when the file does not exist.
    pub(crate) async fn read_parquet(&self, path: &Path) -> Result<Option<Vec<RecordBatch>>> {
        let Some(data) = self.get(path).await? else {
            return Ok(None);
        };
        // A damaged file is named, with its table (a bare "Corrupt footer" left the user
        // to guess which of thousands of files it was).
        let bad = |msg: String| StoreError::Invalid {
            table: path
                .parts()
                .find_map(|p| crate::schema::Table::from_name(p.as_ref()))
                .map_or("a", |t| t.name())
                .to_string(),
            what: format!("file {}", self.display_path(path)),
            msg,
        };
        let reader = ParquetRecordBatchReaderBuilder::try_new(data)
            .and_then(|b| b.build())
            .map_err(|e| bad(e.to_string()))?;
        reader
            .collect::<std::result::Result<Vec<_>, _>>()
            .map(Some)
            .map_err(|e| bad(e.to_string()))
    }

    /// Reads several files at once (S3 latency dominates one by one).
    pub(crate) async fn read_many(
        &self,
        paths: Vec<Path>,
    ) -> Result<Vec<(Path, Option<Vec<RecordBatch>>)>> {
        futures::stream::iter(paths)
            .map(|p| async move {
                let batches = self.read_parquet(&p).await?;
                Ok::<_, StoreError>((p, batches))
            })
            .buffered(8)
            .try_collect()
            .await
    }
}

/// Encodes one record batch as a Parquet file (zstd; statistics on, as readers expect).
pub(crate) fn encode_parquet(batch: &RecordBatch) -> Result<Vec<u8>> {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_created_by(format!("synthsweep-store {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut w = ArrowWriter::try_new(Vec::new(), batch.schema(), Some(props))?;
    w.write(batch)?;
    Ok(w.into_inner()?)
}

/// Deletes a local file (a coordination object: a claim, say), then its folder if that is
/// now empty and not a top folder of the root (a claim's `_claims/<task>/`; a folder that
/// is not empty stays: another writer is creating a claim in it, and object_store creates
/// the folder again if it is gone). Returns the folder above that (`_claims/`), for the
/// caller to remove once if nothing is left in it. A file already gone is fine.
fn delete_local_file(
    root: &std::path::Path,
    file: &std::path::Path,
) -> Result<Option<std::path::PathBuf>> {
    match std::fs::remove_file(file) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(StoreError::storage(format!(
                "deleting {}: {e}",
                file.display()
            )))
        }
    }
    let Some(dir) = file.parent().filter(|d| d.starts_with(root) && *d != root) else {
        return Ok(None);
    };
    match dir.parent() {
        Some(top) if top != root && top.starts_with(root) => {
            let _ = std::fs::remove_dir(dir);
            Ok(Some(top.to_path_buf()))
        }
        _ => Ok(Some(dir.to_path_buf())),
    }
}

/// Reads an object whole; `None` when it does not exist.
async fn get_if_present(store: &dyn ObjectStore, path: &Path) -> Result<Option<Bytes>> {
    match store.get(path).await {
        Ok(r) => Ok(Some(r.bytes().await?)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Deletes an object; one already gone is fine (another writer or recovery got there first).
async fn delete_if_present(store: &dyn ObjectStore, path: &Path) -> Result<()> {
    match store.delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
