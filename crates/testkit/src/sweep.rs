//! A temp-dir harness for the planner: a folder with a few tiny PGM images, a spec written
//! beside them.
use std::path::{Path, PathBuf};
use synthsweep_sweep::{NoopResolver, Plan, SweepError, SweepSpec};

pub use crate::assert_mentions;

/// A temp folder (deleted at the end of the test) with images and a spec.
pub struct Dir {
    /// The folder.
    pub tmp: tempfile::TempDir,
}

/// A 2x2 8-bit PGM whose pixels are `seed, seed+1, ...`.
pub fn pgm(seed: u8) -> Vec<u8> {
    let mut b = b"P5\n2 2\n255\n".to_vec();
    b.extend([
        seed,
        seed.wrapping_add(1),
        seed.wrapping_add(2),
        seed.wrapping_add(3),
    ]);
    b
}

impl Default for Dir {
    fn default() -> Self {
        Self::new()
    }
}

impl Dir {
    /// `images/a.pgm`, `images/b.pgm`, `images/c.pgm` (distinct bytes).
    pub fn new() -> Dir {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("images")).unwrap();
        for (i, n) in ["a", "b", "c"].iter().enumerate() {
            std::fs::write(
                tmp.path().join(format!("images/{n}.pgm")),
                pgm(10 * i as u8),
            )
            .unwrap();
        }
        Dir { tmp }
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    pub fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        p
    }

    pub fn spec_path(&self) -> PathBuf {
        self.path().join("spec.toml")
    }

    /// Parses `text` as `spec.toml` in this folder.
    pub fn spec(&self, text: &str) -> Result<SweepSpec, SweepError> {
        SweepSpec::from_str(text, self.spec_path())
    }

    pub fn plan(&self, text: &str) -> Result<Plan, SweepError> {
        self.spec(text)?.plan(NoopResolver)
    }

    /// The error message of a spec that must fail (parsing or planning).
    pub fn error(&self, text: &str) -> String {
        match self.plan(text) {
            Ok(p) => panic!("expected an error, got a plan: {}", p.summary()),
            Err(e) => e.to_string(),
        }
    }
}
