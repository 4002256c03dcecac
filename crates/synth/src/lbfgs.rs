//! torch.optim.LBFGS on one parameter: the two-loop recursion, optional strong-Wolfe line
//! search, and the same stopping tests. The history scalars (`ro`, `H_diag`, `al`, `be`)
//! are 0-dim tensors of the parameter's kind as in torch; the line search runs in f64
//! (torch mixes Python floats and float32 tensors there), so trajectories agree with torch
//! to rounding, not bit for bit.
use crate::error::Result;
use crate::line_search::strong_wolfe;
use crate::optim::{item, OptimizerState};
use tch::{Device, Kind, Tensor};

pub use synthsweep_core::params::{LbfgsOptions, LineSearch};

/// L-BFGS's history, kept across steps as torch keeps it in `optimizer.state`.
#[derive(Debug, Default)]
pub(crate) struct LbfgsState {
    func_evals: u64,
    n_iter: u64,
    d: Option<Tensor>,
    t: f64,
    old_dirs: Vec<Tensor>,
    old_stps: Vec<Tensor>,
    ro: Vec<Tensor>,
    h_diag: Option<Tensor>,
    prev_flat_grad: Option<Tensor>,
    prev_loss: Option<f64>,
}

fn flat_grad(p: &Tensor) -> Tensor {
    let g = p.grad();
    if g.defined() {
        g.reshape([-1])
    } else {
        p.zeros_like().reshape([-1])
    }
}

pub(crate) fn abs_max(t: &Tensor) -> f64 {
    item(&t.abs().max())
}

fn add_grad(p: &mut Tensor, t: f64, d: &Tensor) {
    tch::no_grad(|| {
        let _ = p.g_add_(&(d.view_as(p) * t));
    });
}

pub(crate) type Closure<'a> = dyn FnMut() -> Result<Tensor> + 'a;

/// Evaluates the objective at `x0 + t d`, then puts the parameter back to `x0`.
pub(crate) fn directional_evaluate(
    p: &mut Tensor,
    closure: &mut Closure,
    x0: &Tensor,
    t: f64,
    d: &Tensor,
) -> Result<(f64, Tensor)> {
    add_grad(p, t, d);
    let loss = item(&closure()?);
    let g = flat_grad(p).copy();
    tch::no_grad(|| p.copy_(x0));
    Ok((loss, g))
}

impl LbfgsState {
    pub(crate) fn step(
        &mut self,
        p: &mut Tensor,
        lr: f64,
        o: &LbfgsOptions,
        closure: &mut Closure,
    ) -> Result<Tensor> {
        let max_eval = o.max_eval();
        let orig_loss = closure()?;
        let mut loss = item(&orig_loss);
        let mut current_evals = 1;
        self.func_evals += 1;
        let mut g = flat_grad(p);
        if abs_max(&g) <= o.tolerance_grad {
            return Ok(orig_loss);
        }
        let mut n_iter = 0;
        while n_iter < o.max_iter {
            n_iter += 1;
            self.n_iter += 1;
            let d = if self.n_iter == 1 {
                self.old_dirs.clear();
                self.old_stps.clear();
                self.ro.clear();
                self.h_diag = None;
                g.neg()
            } else {
                self.update_history(&g, o.history_size);
                self.direction(&g)
            };
            match &mut self.prev_flat_grad {
                Some(prev) => {
                    prev.copy_(&g);
                }
                None => self.prev_flat_grad = Some(g.copy()),
            }
            let prev_loss = loss;
            self.prev_loss = Some(prev_loss);
            let mut t = if self.n_iter == 1 {
                // torch: min(1, 1/‖g‖₁) · lr, a float32 tensor when 1/‖g‖₁ < 1
                let inv = g.abs().sum(None::<Kind>).reciprocal();
                if item(&inv) < 1.0 {
                    item(&(inv * lr))
                } else {
                    lr
                }
            } else {
                lr
            };
            let gtd = item(&g.dot(&d));
            self.d = Some(d.shallow_clone());
            self.t = t;
            if gtd > -o.tolerance_change {
                break;
            }
            let ls_func_evals;
            let mut opt_cond = false;
            if o.line_search_fn.is_some() {
                let x0 = p.detach().copy();
                let ls = strong_wolfe(
                    p,
                    closure,
                    &x0,
                    t,
                    &d,
                    loss,
                    &g,
                    gtd,
                    o.tolerance_change,
                    max_eval.saturating_sub(current_evals),
                )?;
                loss = ls.f;
                g = ls.g;
                t = ls.t;
                ls_func_evals = ls.evals;
                add_grad(p, t, &d);
                opt_cond = abs_max(&g) <= o.tolerance_grad;
            } else {
                add_grad(p, t, &d);
                ls_func_evals = if n_iter != o.max_iter {
                    loss = item(&closure()?);
                    g = flat_grad(p);
                    opt_cond = abs_max(&g) <= o.tolerance_grad;
                    1
                } else {
                    0
                };
            }
            self.t = t;
            current_evals += ls_func_evals;
            self.func_evals += ls_func_evals as u64;
            if n_iter == o.max_iter || current_evals >= max_eval || opt_cond {
                break;
            }
            if abs_max(&(&d * t)) <= o.tolerance_change
                || (loss - prev_loss).abs() < o.tolerance_change
            {
                break;
            }
        }
        Ok(orig_loss)
    }

    fn update_history(&mut self, g: &Tensor, history_size: usize) {
        let (Some(prev), Some(d)) = (&self.prev_flat_grad, &self.d) else {
            return;
        };
        let y = g - prev;
        let s = d * self.t;
        let ys = y.dot(&s);
        if item(&ys) > 1e-10 {
            if self.old_dirs.len() == history_size {
                drop(self.old_dirs.remove(0));
                drop(self.old_stps.remove(0));
                drop(self.ro.remove(0));
            }
            self.h_diag = Some(&ys / y.dot(&y));
            self.ro.push(ys.reciprocal());
            self.old_dirs.push(y);
            self.old_stps.push(s);
        }
    }

    /// The two-loop recursion: an approximation of `-H g`.
    fn direction(&self, g: &Tensor) -> Tensor {
        let k = self.old_dirs.len();
        let mut al = Vec::with_capacity(k);
        let mut q = g.neg();
        for i in (0..k).rev() {
            let a = self.old_stps[i].dot(&q) * &self.ro[i];
            q -= &self.old_dirs[i] * item(&a);
            al.push(a);
        }
        al.reverse();
        let mut r = match &self.h_diag {
            Some(h) => q * h,
            None => q,
        };
        for (((dir, stp), ro), a) in self
            .old_dirs
            .iter()
            .zip(&self.old_stps)
            .zip(&self.ro)
            .zip(&al)
        {
            let be_i = dir.dot(&r) * ro;
            r += stp * item(&(a - be_i));
        }
        r
    }

    pub(crate) fn to(&mut self, device: Device, kind: Kind) {
        let mv = |t: &Tensor| t.to_device(device).to_kind(kind);
        self.d = self.d.as_ref().map(mv);
        self.prev_flat_grad = self.prev_flat_grad.as_ref().map(mv);
        self.old_dirs = self.old_dirs.iter().map(mv).collect();
        self.old_stps = self.old_stps.iter().map(mv).collect();
        self.ro = self.ro.iter().map(mv).collect();
        self.h_diag = self.h_diag.as_ref().map(mv);
    }

    pub(crate) fn export(&self, st: &mut OptimizerState) {
        let s = &mut st.scalars;
        s.insert("func_evals".into(), self.func_evals as f64);
        s.insert("n_iter".into(), self.n_iter as f64);
        s.insert("t".into(), self.t);
        if let Some(l) = self.prev_loss {
            s.insert("prev_loss".into(), l);
        }
        let tensors = &mut st.tensors;
        if let Some(d) = &self.d {
            tensors.insert("d".into(), d.detach().copy());
        }
        if let Some(g) = &self.prev_flat_grad {
            tensors.insert("prev_flat_grad".into(), g.detach().copy());
        }
        if !self.old_dirs.is_empty() {
            tensors.insert("old_dirs".into(), Tensor::stack(&self.old_dirs, 0));
            tensors.insert("old_stps".into(), Tensor::stack(&self.old_stps, 0));
            tensors.insert("ro".into(), Tensor::stack(&self.ro, 0));
        }
        if let Some(h) = &self.h_diag {
            tensors.insert("h_diag".into(), h.detach().copy());
        }
    }

    pub(crate) fn import(&mut self, st: &OptimizerState, device: Device, kind: Kind) -> Result<()> {
        self.func_evals = st.scalar("func_evals")? as u64;
        self.n_iter = st.scalar("n_iter")? as u64;
        self.t = st.scalar("t")?;
        self.h_diag = st.tensor("h_diag", device, kind);
        self.prev_loss = st.scalars.get("prev_loss").copied();
        self.d = st.tensor("d", device, kind);
        self.prev_flat_grad = st.tensor("prev_flat_grad", device, kind);
        let rows = |name: &str| {
            st.tensor(name, device, kind)
                .map(|t| t.unbind(0))
                .unwrap_or_default()
        };
        self.old_dirs = rows("old_dirs");
        self.old_stps = rows("old_stps");
        self.ro = rows("ro");
        Ok(())
    }
}
