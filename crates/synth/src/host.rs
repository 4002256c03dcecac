//! Reads from the device to the host, counted, and the record chunk.
//!
//! Every per-iteration value a synthesis records (loss, gradient norm, pixel change, MAD's
//! metric values, the power method's eigenvalue change) is computed on the image's device
//! and kept there as a one-element tensor; the loops copy them to the host together, once
//! per *chunk* of iterations, through [`read`] here. On a GPU each such copy waits for the
//! device to finish its queue, so fewer copies keep it busy; on the CPU a copy is a plain
//! read. Stop rules, the finiteness check and the callback are then applied to each
//! iteration of the chunk in order, and a synthesis that stopped in the middle of a chunk
//! is put back to the state it had after that iteration: stop iterations, records and
//! final images are those of an iteration-by-iteration run.
//!
//! [`host_reads`] counts the copies made by this thread (the syntheses run on the thread
//! that calls them), so a test can check how many reads an iteration costs.
use std::cell::Cell;
use tch::{Device, Kind, Tensor};

/// Iterations per chunk when nothing else is set: the environment variable
/// `SYNTHSWEEP_RECORD_CHUNK` (an integer >= 1), else 16.
pub const DEFAULT_RECORD_CHUNK: usize = 16;

fn default_chunk() -> usize {
    std::env::var("SYNTHSWEEP_RECORD_CHUNK")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n >= 1)
        .unwrap_or(DEFAULT_RECORD_CHUNK)
}

thread_local! {
    static READS: Cell<u64> = const { Cell::new(0) };
    static CHUNK: Cell<usize> = Cell::new(default_chunk());
}

/// Device-to-host reads made by this thread so far (each [`read`] counts one, whatever
/// number of tensors it copies).
pub fn host_reads() -> u64 {
    READS.with(|c| c.get())
}

/// Iterations this thread's syntheses run between two reads of their records (>= 1).
/// 1 reads after every iteration. Results do not depend on it.
pub fn record_chunk() -> usize {
    CHUNK.with(|c| c.get())
}

/// Sets [`record_chunk`] for this thread (values below 1 are taken as 1).
pub fn set_record_chunk(n: usize) {
    CHUNK.with(|c| c.set(n.max(1)));
}

/// Copies `values` (one-element tensors) and `tensors` (any shape and kind), all on one
/// device, to the CPU in one transfer: they are flattened, widened to float64 (exact for
/// float16/32/64 and bfloat16), concatenated, copied, and cut back: the values as f64, the
/// tensors into their shapes and kinds. Counts one read (none when both are empty).
pub(crate) fn read_mixed(values: &[Tensor], tensors: &[Tensor]) -> (Vec<f64>, Vec<Tensor>) {
    if values.is_empty() && tensors.is_empty() {
        return (Vec::new(), Vec::new());
    }
    READS.with(|c| c.set(c.get() + 1));
    assert!(
        values.iter().all(|t| t.numel() == 1),
        "values are one-element tensors"
    );
    tch::no_grad(|| read_unchecked(values, tensors))
}

fn read_unchecked(values: &[Tensor], tensors: &[Tensor]) -> (Vec<f64>, Vec<Tensor>) {
    if let ([v], []) = (values, tensors) {
        // One value (`.item()`): read as it is.
        return (
            vec![v.reshape(Vec::<i64>::new()).double_value(&[])],
            Vec::new(),
        );
    }
    // The values stacked first (one op when they share a kind, the usual case), then
    // everything widened and concatenated: few ops per chunk, whatever its length.
    let mut flat: Vec<Tensor> = Vec::with_capacity(tensors.len() + 1);
    if !values.is_empty() {
        let scalars: Vec<Tensor> = values
            .iter()
            .map(|t| {
                if t.dim() == 0 {
                    t.shallow_clone()
                } else {
                    t.reshape(Vec::<i64>::new())
                }
            })
            .collect();
        if scalars.windows(2).all(|w| w[0].kind() == w[1].kind()) {
            flat.push(Tensor::stack(&scalars, 0).to_kind(Kind::Double));
        } else {
            flat.extend(scalars.iter().map(|t| t.reshape([1]).to_kind(Kind::Double)));
        }
    }
    flat.extend(
        tensors
            .iter()
            .map(|t| t.reshape([-1]).to_kind(Kind::Double)),
    );
    let all = match flat.len() {
        1 => flat.remove(0),
        _ => Tensor::cat(&flat, 0),
    }
    .to_device(Device::Cpu);
    let nv = values.len() as i64;
    let head = Vec::<f64>::try_from(all.narrow(0, 0, nv)).expect("a float64 vector");
    let mut out = Vec::with_capacity(tensors.len());
    let mut at = nv;
    for t in tensors {
        let n = t.numel() as i64;
        out.push(all.narrow(0, at, n).reshape(t.size()).to_kind(t.kind()));
        at += n;
    }
    (head, out)
}

/// [`read_mixed`] of one-element tensors: their values as f64.
pub(crate) fn read_values(values: &[Tensor]) -> Vec<f64> {
    read_mixed(values, &[]).0
}
