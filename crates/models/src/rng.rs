//! The one way synthsweep draws random numbers: under a process-wide lock, after seeding.
//!
//! libtorch has one default generator per device, shared by every thread of the process;
//! `Tensor::rand` and friends draw from it. plenoptic's results depend on the order of the
//! draws after `torch.manual_seed(seed)` (see the synthesis crate's constructors), so a
//! thread that draws while another is between its seeding and its draws shifts the other's
//! numbers. Every draw in synthsweep therefore happens inside [`with_rng`]: model and metric
//! construction (plenoptic's `LuminanceGainControl` draws `rand` even when pretrained,
//! `Linear` without default filters draws its weights) and every synthesis constructor.
//! Holding the lock for a whole seeded sequence makes that sequence the task's own stream:
//! the same seed gives the same numbers whatever other threads do.
//!
//! The lock is re-entrant on one thread, so a builder that takes it may be called inside a
//! caller's [`with_rng`]. Code that draws while running a model forward pass outside any
//! constructor (none of the built-in models does; a TorchScript model could) draws from the
//! shared generator without this guarantee.
use std::cell::Cell;
use std::sync::Mutex;

static RNG_LOCK: Mutex<()> = Mutex::new(());

thread_local! {
    /// Whether this thread holds [`RNG_LOCK`] (inside [`with_rng`]).
    static HELD: Cell<bool> = const { Cell::new(false) };
}

/// The seed a model or metric is built with when it must not depend on what was drawn
/// before: a sweep's worker builds each model once and reuses it for every task naming it,
/// so a model that draws at construction (a gain-control model without given scalars)
/// must come out the same whichever task had it built. It is built as a plenoptic script
/// does that calls `torch.manual_seed(0)` right before constructing the model, and then
/// seeds each synthesis with the task's own seed.
pub const MODEL_SEED: i64 = 0;

/// Runs `f` holding the process-wide RNG lock, after `tch::manual_seed(seed)` (every
/// device's generator) when a seed is given; `None` continues the generator's stream.
/// Re-entrant: inside another `with_rng` on the same thread, `f` runs at once (reseeding
/// when a seed is given).
pub fn with_rng<T>(seed: Option<i64>, f: impl FnOnce() -> T) -> T {
    /// Restores the thread's "held" flag when `f` returns or panics, before the lock is
    /// released (locals drop in reverse order).
    struct Release(bool);
    impl Drop for Release {
        fn drop(&mut self) {
            HELD.with(|h| h.set(self.0));
        }
    }
    let nested = HELD.with(Cell::get);
    let _guard = (!nested).then(|| RNG_LOCK.lock().unwrap_or_else(|e| e.into_inner()));
    HELD.with(|h| h.set(true));
    let _release = Release(nested);
    if let Some(s) = seed {
        tch::manual_seed(s);
    }
    f()
}

#[cfg(test)]
mod tests {
    // Equal draws after equal seeds are checked where every draw of the test binary goes
    // through `with_rng` (exec's determinism tests); here other tests draw unlocked.
    use super::*;

    #[test]
    fn sections_nest_on_one_thread() {
        let depth = with_rng(Some(3), || with_rng(None, || with_rng(Some(4), || 3)));
        assert_eq!(depth, 3);
        assert!(!HELD.with(Cell::get));
    }

    #[test]
    fn a_panic_inside_releases_the_lock() {
        let r = std::panic::catch_unwind(|| with_rng(Some(1), || panic!("boom")));
        assert!(r.is_err());
        assert!(!HELD.with(Cell::get));
        let other = std::thread::spawn(|| with_rng(Some(1), || 7)).join();
        assert_eq!(other.unwrap(), 7);
    }
}
