//! Per-task state kept on disk instead of in memory, so that the report's memory does not
//! grow with the number of tasks: records spread over [`BUCKETS`] files by a 16-byte key
//! (a task id's or a MAD competition's digest), written as the tables stream by and read
//! back one bucket at a time. A bucket holds about 1/[`BUCKETS`] of the records (the keys
//! are SHA-256 digests), so reading one costs a few bytes per task / 64 of memory: 1.5 MiB
//! at a million tasks.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{ReportError, Result};

/// Bucket files per spill.
pub const BUCKETS: usize = 64;

/// The bucket of a key (its first byte, spread over [`BUCKETS`]).
pub fn bucket_of(key: &[u8; 16]) -> usize {
    usize::from(key[0]) * BUCKETS / 256
}

/// Length-prefixed records appended to [`BUCKETS`] files under one folder.
pub struct Spill {
    dir: PathBuf,
    files: Vec<BufWriter<File>>,
    records: usize,
}

impl Spill {
    /// Creates (or empties) the folder `dir` and its bucket files.
    ///
    /// # Errors
    ///
    /// A file that cannot be created.
    pub fn create(dir: &Path) -> Result<Spill> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(ReportError::scratch(dir))?;
        }
        std::fs::create_dir_all(dir).map_err(ReportError::scratch(dir))?;
        let files = (0..BUCKETS)
            .map(|b| {
                let p = dir.join(b.to_string());
                File::create(&p)
                    .map(|f| BufWriter::with_capacity(8 << 10, f))
                    .map_err(ReportError::scratch(&p))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Spill {
            dir: dir.to_path_buf(),
            files,
            records: 0,
        })
    }

    /// Appends `record` to `key`'s bucket.
    ///
    /// # Errors
    ///
    /// A write that failed.
    pub fn push(&mut self, key: &[u8; 16], record: &[u8]) -> Result<()> {
        let b = bucket_of(key);
        let len = u32::try_from(record.len()).expect("a spill record under 4 GiB");
        let f = &mut self.files[b];
        f.write_all(&len.to_le_bytes())
            .and_then(|()| f.write_all(record))
            .map_err(ReportError::scratch(self.dir.join(b.to_string())))?;
        self.records += 1;
        Ok(())
    }

    /// Records pushed so far.
    pub fn len(&self) -> usize {
        self.records
    }

    /// True before the first push.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Flushes every bucket; the spill can then be read ([`Spill::bucket`]).
    ///
    /// # Errors
    ///
    /// A write that failed.
    pub fn finish(mut self) -> Result<SpillFiles> {
        for (b, f) in self.files.iter_mut().enumerate() {
            f.flush()
                .map_err(ReportError::scratch(self.dir.join(b.to_string())))?;
        }
        Ok(SpillFiles { dir: self.dir })
    }
}

/// A finished [`Spill`], read one bucket at a time; its folder is removed when dropped.
pub struct SpillFiles {
    dir: PathBuf,
}

impl SpillFiles {
    /// The records of bucket `b`, in the order they were pushed.
    ///
    /// # Errors
    ///
    /// A read that failed, or a truncated file.
    pub fn bucket(&self, b: usize) -> Result<Vec<Vec<u8>>> {
        let p = self.dir.join(b.to_string());
        let mut r = BufReader::new(File::open(&p).map_err(ReportError::scratch(&p))?);
        let mut out = Vec::new();
        let mut len = [0u8; 4];
        loop {
            match r.read_exact(&mut len) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(ReportError::scratch(&p)(e)),
            }
            let mut rec = vec![0u8; u32::from_le_bytes(len) as usize];
            r.read_exact(&mut rec).map_err(ReportError::scratch(&p))?;
            out.push(rec);
        }
        Ok(out)
    }
}

impl Drop for SpillFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_by_bucket_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = Spill::create(&tmp.path().join("s")).unwrap();
        let keys: Vec<[u8; 16]> = (0..=255u8).map(|b| [b; 16]).collect();
        for (i, k) in keys.iter().enumerate() {
            s.push(k, format!("r{i}").as_bytes()).unwrap();
            s.push(k, b"").unwrap();
        }
        assert_eq!(s.len(), 512);
        let f = s.finish().unwrap();
        let mut seen = 0;
        for b in 0..BUCKETS {
            let recs = f.bucket(b).unwrap();
            assert_eq!(recs.len(), 2 * 256 / BUCKETS);
            for pair in recs.chunks(2) {
                let i: usize = std::str::from_utf8(&pair[0][1..]).unwrap().parse().unwrap();
                assert_eq!(bucket_of(&keys[i]), b);
                assert!(pair[1].is_empty());
                seen += 1;
            }
        }
        assert_eq!(seen, 256);
        let dir = tmp.path().join("s");
        drop(f);
        assert!(!dir.exists());
    }
}
