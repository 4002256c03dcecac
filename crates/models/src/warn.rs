//! Warnings that plenoptic emits on every call (SSIM's shrunken window, Portilla-Simoncelli's
//! odd-sized autocorrelation), logged through `tracing` once per process and key instead, so
//! a synthesis does not repeat them at every iteration.
use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

/// What a warning is about: the owner (metric or model name), the situation, and every
/// number that decides whether it arises and what the message says (the input's height and
/// width, and e.g. Portilla-Simoncelli's `n_scales` and `spatial_corr_width`; 0 for unused).
pub(crate) type WarnKey = (&'static str, &'static str, [i64; 4]);

fn seen() -> &'static Mutex<HashSet<WarnKey>> {
    static SEEN: OnceLock<Mutex<HashSet<WarnKey>>> = OnceLock::new();
    SEEN.get_or_init(|| Mutex::new(HashSet::new()))
}

/// True the first time `key` is seen in this process, false after.
pub(crate) fn first_time(key: WarnKey) -> bool {
    seen().lock().map(|mut s| s.insert(key)).unwrap_or(false)
}
