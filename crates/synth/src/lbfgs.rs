//! torch.optim.LBFGS on one parameter: the two-loop recursion, optional strong-Wolfe line
//! search, and the same stopping tests. The history scalars (`ro`, `H_diag`, `al`, `be`)
//! are 0-dim tensors of the parameter's kind as in torch; the line search runs in f64
//! (torch mixes Python floats and float32 tensors there), so trajectories agree with torch
//! to rounding, not bit for bit.
use crate::error::{Result, SynthError};
use crate::optim::{item, non_negative, OptimizerState};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// The line search L-BFGS may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineSearch {
    StrongWolfe,
}

/// torch.optim.LBFGS options and defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LbfgsOptions {
    pub lr: f64,
    pub max_iter: usize,
    /// Default `max_iter * 5 / 4`.
    pub max_eval: Option<usize>,
    pub tolerance_grad: f64,
    pub tolerance_change: f64,
    pub history_size: usize,
    pub line_search_fn: Option<LineSearch>,
}

impl Default for LbfgsOptions {
    fn default() -> Self {
        LbfgsOptions {
            lr: 1.0,
            max_iter: 20,
            max_eval: None,
            tolerance_grad: 1e-7,
            tolerance_change: 1e-9,
            history_size: 100,
            line_search_fn: None,
        }
    }
}

impl LbfgsOptions {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.max_iter == 0 {
            return Err(SynthError::invalid("optimizer.max_iter", "must be at least 1"));
        }
        if self.history_size == 0 {
            return Err(SynthError::invalid("optimizer.history_size", "must be at least 1"));
        }
        non_negative("optimizer.tolerance_grad", self.tolerance_grad)?;
        non_negative("optimizer.tolerance_change", self.tolerance_change)
    }

    fn max_eval(&self) -> usize {
        self.max_eval.unwrap_or(self.max_iter * 5 / 4)
    }
}

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

fn abs_max(t: &Tensor) -> f64 {
    item(&t.abs().max())
}

fn add_grad(p: &mut Tensor, t: f64, d: &Tensor) {
    tch::no_grad(|| {
        let _ = p.g_add_(&(d.view_as(p) * t));
    });
}

type Closure<'a> = dyn FnMut() -> Result<Tensor> + 'a;

/// Evaluates the objective at `x0 + t d`, then puts the parameter back to `x0`.
fn directional_evaluate(p: &mut Tensor, closure: &mut Closure, x0: &Tensor, t: f64, d: &Tensor) -> Result<(f64, Tensor)> {
    add_grad(p, t, d);
    let loss = item(&closure()?);
    let g = flat_grad(p).copy();
    tch::no_grad(|| p.copy_(x0));
    Ok((loss, g))
}

impl LbfgsState {
    pub(crate) fn step(&mut self, p: &mut Tensor, lr: f64, o: &LbfgsOptions, closure: &mut Closure) -> Result<Tensor> {
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
                let ls = strong_wolfe(p, closure, &x0, t, &d, loss, &g, gtd, o.tolerance_change, max_eval.saturating_sub(current_evals))?;
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
            if abs_max(&(&d * t)) <= o.tolerance_change || (loss - prev_loss).abs() < o.tolerance_change {
                break;
            }
        }
        Ok(orig_loss)
    }

    fn update_history(&mut self, g: &Tensor, history_size: usize) {
        let (Some(prev), Some(d)) = (&self.prev_flat_grad, &self.d) else { return };
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
        for (((dir, stp), ro), a) in self.old_dirs.iter().zip(&self.old_stps).zip(&self.ro).zip(&al) {
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
        let rows = |name: &str| st.tensor(name, device, kind).map(|t| t.unbind(0)).unwrap_or_default();
        self.old_dirs = rows("old_dirs");
        self.old_stps = rows("old_stps");
        self.ro = rows("ro");
        Ok(())
    }
}

/// torch's `_cubic_interpolate`: the minimiser of the cubic through two points and slopes.
fn cubic_interpolate(x1: f64, f1: f64, g1: f64, x2: f64, f2: f64, g2: f64, bounds: Option<(f64, f64)>) -> f64 {
    let (lo, hi) = bounds.unwrap_or(if x1 <= x2 { (x1, x2) } else { (x2, x1) });
    let d1 = g1 + g2 - 3.0 * (f1 - f2) / (x1 - x2);
    let d2_square = d1 * d1 - g1 * g2;
    if d2_square >= 0.0 {
        let d2 = d2_square.sqrt();
        let min_pos = if x1 <= x2 {
            x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2.0 * d2))
        } else {
            x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2.0 * d2))
        };
        min_pos.max(lo).min(hi)
    } else {
        (lo + hi) / 2.0
    }
}

struct LineSearchResult {
    f: f64,
    g: Tensor,
    t: f64,
    evals: usize,
}

/// A point of the line search: step, loss, gradient and directional derivative.
struct Point {
    t: f64,
    f: f64,
    g: Tensor,
    gtd: f64,
}

/// torch's `_strong_wolfe` (c1 = 1e-4, c2 = 0.9).
#[allow(clippy::too_many_arguments)]
fn strong_wolfe(
    p: &mut Tensor,
    closure: &mut Closure,
    x0: &Tensor,
    mut t: f64,
    d: &Tensor,
    f: f64,
    g: &Tensor,
    gtd: f64,
    tolerance_change: f64,
    max_ls: usize,
) -> Result<LineSearchResult> {
    let (c1, c2) = (1e-4, 0.9);
    let d_norm = abs_max(d);
    let (mut f_new, mut g_new) = directional_evaluate(p, closure, x0, t, d)?;
    let mut evals = 1;
    let mut gtd_new = item(&g_new.dot(d));
    let mut prev = Point { t: 0.0, f, g: g.copy(), gtd };
    let mut done = false;
    let mut ls_iter = 0;
    let mut bracket: Vec<Point> = Vec::new();
    while ls_iter < max_ls {
        if f_new > f + c1 * t * gtd || (ls_iter > 1 && f_new >= prev.f) {
            bracket = vec![prev, Point { t, f: f_new, g: g_new.copy(), gtd: gtd_new }];
            break;
        }
        if gtd_new.abs() <= -c2 * gtd {
            bracket = vec![Point { t, f: f_new, g: g_new.shallow_clone(), gtd: gtd_new }];
            done = true;
            break;
        }
        if gtd_new >= 0.0 {
            bracket = vec![prev, Point { t, f: f_new, g: g_new.copy(), gtd: gtd_new }];
            break;
        }
        let (min_step, max_step) = (t + 0.01 * (t - prev.t), t * 10.0);
        let tmp = t;
        t = cubic_interpolate(prev.t, prev.f, prev.gtd, t, f_new, gtd_new, Some((min_step, max_step)));
        prev = Point { t: tmp, f: f_new, g: g_new.copy(), gtd: gtd_new };
        (f_new, g_new) = directional_evaluate(p, closure, x0, t, d)?;
        evals += 1;
        gtd_new = item(&g_new.dot(d));
        ls_iter += 1;
    }
    if ls_iter == max_ls {
        // torch leaves the gtd of this bracket undefined; the zoom loop below cannot run then.
        bracket = vec![Point { t: 0.0, f, g: g.shallow_clone(), gtd }, Point { t, f: f_new, g: g_new, gtd: gtd_new }];
    }
    let order = |b: &[Point]| if b[0].f <= b[b.len() - 1].f { (0, 1) } else { (1, 0) };
    let (mut low, mut high) = order(&bracket);
    let mut insuf_progress = false;
    while !done && ls_iter < max_ls {
        if (bracket[1].t - bracket[0].t).abs() * d_norm < tolerance_change {
            break;
        }
        t = cubic_interpolate(bracket[0].t, bracket[0].f, bracket[0].gtd, bracket[1].t, bracket[1].f, bracket[1].gtd, None);
        let (bmax, bmin) = (bracket[0].t.max(bracket[1].t), bracket[0].t.min(bracket[1].t));
        let eps = 0.1 * (bmax - bmin);
        if (bmax - t).min(t - bmin) < eps {
            if insuf_progress || t >= bmax || t <= bmin {
                t = if (t - bmax).abs() < (t - bmin).abs() { bmax - eps } else { bmin + eps };
                insuf_progress = false;
            } else {
                insuf_progress = true;
            }
        } else {
            insuf_progress = false;
        }
        let (f_new, g_new) = directional_evaluate(p, closure, x0, t, d)?;
        evals += 1;
        let gtd_new = item(&g_new.dot(d));
        ls_iter += 1;
        if f_new > f + c1 * t * gtd || f_new >= bracket[low].f {
            bracket[high] = Point { t, f: f_new, g: g_new, gtd: gtd_new };
            (low, high) = order(&bracket);
        } else {
            if gtd_new.abs() <= -c2 * gtd {
                done = true;
            } else if gtd_new * (bracket[high].t - bracket[low].t) >= 0.0 {
                let l = &bracket[low];
                bracket[high] = Point { t: l.t, f: l.f, g: l.g.shallow_clone(), gtd: l.gtd };
            }
            bracket[low] = Point { t, f: f_new, g: g_new, gtd: gtd_new };
        }
    }
    let best = &bracket[low.min(bracket.len() - 1)];
    Ok(LineSearchResult { f: best.f, g: best.g.shallow_clone(), t: best.t, evals })
}
