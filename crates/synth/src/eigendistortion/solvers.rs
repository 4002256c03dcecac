//! The three eigensolvers behind `Eigendistortion::synthesize`, step for step as plenoptic 1.1
//! runs them (same RNG draws, same QR/eigh/SVD calls, same stopping test).
use super::{PowerPhase, PowerProgress};
use crate::autodiff::FisherProduct;
use crate::error::{Result, SynthError};
use std::ops::ControlFlow;
use tch::Tensor;

/// All eigenpairs of `F = JᵀJ`, largest first: (values (n), vectors (n, n) as columns).
/// The values are signed here; tiny negative ones are float32 noise around zero.
pub(super) fn exact(jacobian: &Tensor) -> Result<(Tensor, Tensor)> {
    let fisher = jacobian.tr().f_matmul(jacobian)?;
    let (values, vectors) = fisher.f_linalg_eigh("U")?;
    Ok((values.flip([0]), vectors.flip([1])))
}

/// One run of the power method.
pub(super) struct PowerRun {
    pub eigenvalues: Tensor,
    pub eigenvectors: Tensor,
    pub iterations: usize,
}

/// L2 norm of each column, kept as a (1, k) row.
fn column_norms(v: &Tensor) -> Tensor {
    v.norm_scalaropt_dim(2, [0], true)
}

/// Block power (orthogonal) iteration on `F − shift·I` (Golub & Van Loan 8.2.8), with the
/// eigenvalues estimated by the unshifted Rayleigh quotients, from `init` (n, k): plenoptic
/// draws it as `randn(n, k)` right before the run.
pub(super) fn power(
    fisher: &FisherProduct,
    init: &Tensor,
    shift: Option<&Tensor>,
    tol: f64,
    max_iter: usize,
    phase: PowerPhase,
    callback: &mut dyn FnMut(&PowerProgress) -> ControlFlow<()>,
) -> Result<PowerRun> {
    let x = fisher.x;
    let mut v = init / column_norms(init);
    // One plain power step before the loop, so the first estimate is already F-weighted.
    let fv = fisher.apply(&v)?;
    v = &fv / column_norms(&fv);
    let mut lambda = fisher.quadform(&v)?;
    let tol = Tensor::from(tol).to_kind(x.kind()).to_device(x.device());
    // Each iteration's change and stop test stay on the device and are read once per chunk
    // (see `crate::host`); the loop then goes through the chunk's iterations in order and
    // keeps the eigenpairs of the one where it stops (tolerance met, or cancelled).
    let chunk = crate::host::record_chunk();
    let mut iterations = 0;
    let mut converged = false;
    while iterations < max_iter && !converged {
        let len = chunk.min(max_iter - iterations);
        let mut steps: Vec<(Tensor, Tensor)> = Vec::with_capacity(len);
        let mut parts: Vec<Tensor> = Vec::with_capacity(2 * len);
        let mut failure = None;
        for _ in 0..len {
            let step = (|| {
                let mut fv = fisher.apply(&v)?;
                if let Some(shift) = shift {
                    fv -= shift * &v;
                }
                let (v_new, _) = Tensor::f_linalg_qr(&fv, "reduced")?;
                let lambda_new = fisher.quadform(&v_new)?;
                Ok::<_, SynthError>((v_new, lambda_new))
            })();
            let (v_new, lambda_new) = match step {
                Ok(s) => s,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
            let delta = (&lambda - &lambda_new).norm();
            parts.push(delta.le_tensor(&tol));
            parts.push(delta);
            v = v_new;
            lambda = lambda_new;
            steps.push((v.shallow_clone(), lambda.shallow_clone()));
        }
        let values = crate::host::read_values(&parts);
        for (c, (v_c, lambda_c)) in steps.into_iter().enumerate() {
            iterations += 1;
            let progress = PowerProgress {
                phase,
                iteration: iterations,
                delta_eigenvalue: values[2 * c + 1],
            };
            let cancelled = callback(&progress).is_break();
            if cancelled || values[2 * c] != 0.0 {
                (v, lambda) = (v_c, lambda_c);
                if cancelled {
                    return Err(SynthError::Cancelled {
                        iteration: iterations,
                    });
                }
                converged = true;
                break;
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
    }
    Ok(PowerRun {
        eigenvalues: lambda,
        eigenvectors: v,
        iterations,
    })
}

/// Output of the randomized SVD.
pub(super) struct RsvdRun {
    pub eigenvalues: Tensor,
    pub eigenvectors: Tensor,
    pub error_approx: f64,
}

/// Randomized truncated SVD of `F` (Halko, Martinsson & Tropp 2011) from `probes` (n, k + p),
/// with the error estimated on `test` (n, 20): plenoptic draws both with `randn`.
pub(super) fn randomized_svd(
    fisher: &FisherProduct,
    k: i64,
    probes: &Tensor,
    test: &Tensor,
    q: usize,
) -> Result<RsvdRun> {
    let (probes, _) = Tensor::f_linalg_qr(probes, "reduced")?;
    let mut z = fisher.apply(&probes)?;
    // Powers of F sharpen the spectrum; plenoptic does not re-orthonormalise between them.
    for _ in 0..q {
        z = fisher.apply(&z)?;
    }
    let (basis, _) = Tensor::f_linalg_qr(&z, "reduced")?;
    let small = basis.tr().f_matmul(&fisher.apply(&basis)?)?;
    // torch.svd(some=True) is linalg.svd(full_matrices=False) with V = Vhᴴ returned.
    let (_, s, v) = small.f_svd(true, true)?;
    let vectors = basis.f_matmul(&v)?;
    let omega = fisher.apply(test)?;
    let residual = &omega - basis.matmul(&basis.tr()).matmul(&omega);
    let error_approx = crate::optim::item(&column_norms(&residual).mean(None));
    Ok(RsvdRun {
        eigenvalues: s.narrow(0, 0, k),
        eigenvectors: vectors.narrow(1, 0, k),
        error_approx,
    })
}
