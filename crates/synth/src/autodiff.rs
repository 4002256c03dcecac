//! Jacobians and Jacobian products by reverse-mode autodiff, as plenoptic's `autodiff` computes them.
//!
//! `y` is a model output of shape (m, 1) and `x` the (n, 1) leaf it was computed from. The
//! graph from `x` to `y` is kept (every call passes `keep_graph`), so one forward pass serves
//! any number of products; every returned tensor is detached, so nothing built by one call
//! (a power iteration, say) outlives it.
use crate::error::{Result, SynthError};
use tch::Tensor;

/// Checks that `t` is a column (len, 1) with `len` rows; `len = None` takes any length.
fn check_column(what: &str, t: &Tensor, len: Option<i64>) -> Result<i64> {
    let s = t.size();
    if s.len() != 2 || s[1] != 1 || len.is_some_and(|l| l != s[0]) {
        let need = match len {
            Some(l) => format!("({l}, 1)"),
            None => "(len, 1)".to_string(),
        };
        return Err(SynthError::invalid(
            what,
            format!("expected a column of shape {need}, got {s:?}"),
        ));
    }
    Ok(s[0])
}

/// Checks that `t` is a matrix with `rows` rows and at least one column; returns its columns.
fn check_matrix(what: &str, t: &Tensor, rows: i64) -> Result<i64> {
    let s = t.size();
    if s.len() != 2 || s[0] != rows || s[1] < 1 {
        return Err(SynthError::invalid(
            what,
            format!("expected a matrix of shape ({rows}, k) with k >= 1, got {s:?}"),
        ));
    }
    Ok(s[1])
}

/// The gradient of `outputs` with respect to `input`, each output weighted by `weights`
/// (autograd's `grad_outputs`); `None` weighs them all by one.
fn grad(
    outputs: &Tensor,
    weights: Option<&Tensor>,
    input: &Tensor,
    create_graph: bool,
) -> Result<Tensor> {
    let root = match weights {
        Some(w) => outputs * w,
        None => outputs.shallow_clone(),
    };
    gradient_of(root, input, create_graph)
}

/// `grad(outputs, input, grad_outputs = weights[:, j])` for an (r, 1) column `outputs` and an
/// (r, k) matrix `weights`. libtorch's engine (all tch reaches) seeds the backward pass with
/// ones, so the weights enter through a product, whose backward (`ones * w`) is exact. With
/// k > 1, plenoptic's weight column is a strided view (stride k), and that layout changes the
/// last bits of some of libtorch's backward kernels (strided loops are not vectorised). To get
/// the same layout, `outputs` is padded to k columns and weighted by a contiguous matrix whose
/// first column is `weights[:, j]`: the gradient that reaches `outputs` is then that first
/// column, a view with stride k.
fn grad_column(
    outputs: &Tensor,
    weights: &Tensor,
    j: i64,
    input: &Tensor,
    create_graph: bool,
) -> Result<Tensor> {
    let (rows, k) = (weights.size()[0], weights.size()[1]);
    if k == 1 {
        return grad(outputs, Some(weights), input, create_graph);
    }
    let order: Vec<i64> = std::iter::once(j)
        .chain((0..k).filter(|&c| c != j))
        .collect();
    let w = weights.f_index_select(1, &Tensor::from_slice(&order).to_device(weights.device()))?;
    let padding = Tensor::f_zeros([rows, k - 1], (outputs.kind(), outputs.device()))?;
    let root = Tensor::f_cat(&[outputs, &padding], 1)? * w;
    gradient_of(root, input, create_graph)
}

fn gradient_of(root: Tensor, input: &Tensor, create_graph: bool) -> Result<Tensor> {
    let mut g = Tensor::f_run_backward(&[root], &[input], true, create_graph)?;
    let g = g.pop().expect("one gradient per input");
    if !g.defined() {
        // plenoptic passes allow_unused and would then fail on reshaping None; say why instead.
        return Err(SynthError::invalid(
            "x",
            "the output does not depend on the input",
        ));
    }
    Ok(g)
}

/// The full Jacobian `J` (m, n) of `y` (m, 1) with respect to `x` (n, 1), one backward pass per
/// output element. Only sensible for small inputs: it costs m backward passes and m·n floats.
pub fn jacobian(y: &Tensor, x: &Tensor) -> Result<Tensor> {
    let m = check_column("y", y, None)?;
    let n = check_column("x", x, None)?;
    let rows = (0..m)
        .map(|i| Ok(grad(&y.get(i), None, x, false)?.reshape([n])))
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::stack(&rows, 0).detach())
}

/// Columns `grad(y, x, U[:, j])`, attached to the graph when `create_graph`.
fn vjp_columns(y: &Tensor, x: &Tensor, u: &Tensor, create_graph: bool) -> Result<Tensor> {
    let m = check_column("y", y, None)?;
    let n = check_column("x", x, None)?;
    let k = check_matrix("U", u, m)?;
    let cols = (0..k)
        .map(|j| Ok(grad_column(y, u, j, x, create_graph)?.reshape([n, 1])))
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::cat(&cols, 1))
}

/// `Uᵀ J` as columns: the vector-Jacobian products of the k columns of `U` (m, k), shape (n, k).
pub fn vector_jacobian_product(y: &Tensor, x: &Tensor, u: &Tensor) -> Result<Tensor> {
    Ok(vjp_columns(y, x, u, false)?.detach())
}

/// `J V`: the Jacobian-vector products of the k columns of `V` (n, k), shape (m, k).
///
/// Reverse mode twice (the "double-vjp trick"): `g(u) = Jᵀu` is linear in a dummy `u`, so the
/// gradient of `⟨g(u), v⟩` with respect to `u` is `J v`, whatever `u` is (plenoptic uses ones).
pub fn jacobian_vector_product(y: &Tensor, x: &Tensor, v: &Tensor) -> Result<Tensor> {
    let dummy = y.ones_like().set_requires_grad(true);
    jvp_with_dummy(y, x, v, &dummy)
}

fn jvp_with_dummy(y: &Tensor, x: &Tensor, v: &Tensor, dummy: &Tensor) -> Result<Tensor> {
    let n = check_column("x", x, None)?;
    let k = check_matrix("V", v, n)?;
    let g = vjp_columns(y, x, dummy, true)?;
    let cols = (0..k)
        .map(|j| grad_column(&g, v, j, dummy, false))
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::cat(&cols, 1).detach())
}

/// The Fisher information matrix (for additive white Gaussian noise on `y`) times `V` (n, k):
/// `F V = Jᵀ (J V)`, shape (n, k).
pub fn fisher_vp(y: &Tensor, x: &Tensor, v: &Tensor) -> Result<Tensor> {
    let dummy = y.ones_like().set_requires_grad(true);
    FisherProduct { y, x, dummy }.apply(v)
}

/// `vⱼᵀ F vⱼ` for each column of `V` (n, k), shape (k): the Rayleigh quotients of unit columns.
pub fn fisher_quadform(y: &Tensor, x: &Tensor, v: &Tensor) -> Result<Tensor> {
    let dummy = y.ones_like().set_requires_grad(true);
    FisherProduct { y, x, dummy }.quadform(v)
}

/// `V ↦ F V` at one image, with the dummy vector of the jvp trick made once (plenoptic caches it).
pub(crate) struct FisherProduct<'a> {
    pub(crate) y: &'a Tensor,
    pub(crate) x: &'a Tensor,
    pub(crate) dummy: Tensor,
}

impl<'a> FisherProduct<'a> {
    pub(crate) fn new(y: &'a Tensor, x: &'a Tensor) -> Self {
        FisherProduct {
            y,
            x,
            dummy: y.ones_like().set_requires_grad(true),
        }
    }

    /// `F V`, detached.
    pub(crate) fn apply(&self, v: &Tensor) -> Result<Tensor> {
        let jv = jvp_with_dummy(self.y, self.x, v, &self.dummy)?;
        Ok(vjp_columns(self.y, self.x, &jv, false)?.detach())
    }

    /// `vⱼᵀ F vⱼ` per column. A 1-D dot product per column, which is what plenoptic computes;
    /// `(V * FV).sum(0)` reduces in another order and can differ in the last bit.
    pub(crate) fn quadform(&self, v: &Tensor) -> Result<Tensor> {
        let fv = self.apply(v)?;
        let k = v.size()[1];
        let dots: Vec<Tensor> = (0..k)
            .map(|j| v.select(1, j).dot(&fv.select(1, j)))
            .collect();
        Ok(Tensor::stack(&dots, 0))
    }
}
