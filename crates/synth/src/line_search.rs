//! torch's strong-Wolfe line search for L-BFGS (`_strong_wolfe`, c1 = 1e-4, c2 = 0.9)
//! with its cubic interpolation, in f64.
use crate::error::Result;
use crate::lbfgs::{abs_max, directional_evaluate, Closure};
use crate::optim::item;
use tch::Tensor;

/// torch's `_cubic_interpolate`: the minimiser of the cubic through two points and slopes.
fn cubic_interpolate(
    x1: f64,
    f1: f64,
    g1: f64,
    x2: f64,
    f2: f64,
    g2: f64,
    bounds: Option<(f64, f64)>,
) -> f64 {
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

pub(crate) struct LineSearchResult {
    pub f: f64,
    pub g: Tensor,
    pub t: f64,
    pub evals: usize,
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
pub(crate) fn strong_wolfe(
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
    let mut prev = Point {
        t: 0.0,
        f,
        g: g.copy(),
        gtd,
    };
    let mut done = false;
    let mut ls_iter = 0;
    let mut bracket: Vec<Point> = Vec::new();
    while ls_iter < max_ls {
        if f_new > f + c1 * t * gtd || (ls_iter > 1 && f_new >= prev.f) {
            bracket = vec![
                prev,
                Point {
                    t,
                    f: f_new,
                    g: g_new.copy(),
                    gtd: gtd_new,
                },
            ];
            break;
        }
        if gtd_new.abs() <= -c2 * gtd {
            bracket = vec![Point {
                t,
                f: f_new,
                g: g_new.shallow_clone(),
                gtd: gtd_new,
            }];
            done = true;
            break;
        }
        if gtd_new >= 0.0 {
            bracket = vec![
                prev,
                Point {
                    t,
                    f: f_new,
                    g: g_new.copy(),
                    gtd: gtd_new,
                },
            ];
            break;
        }
        let (min_step, max_step) = (t + 0.01 * (t - prev.t), t * 10.0);
        let tmp = t;
        t = cubic_interpolate(
            prev.t,
            prev.f,
            prev.gtd,
            t,
            f_new,
            gtd_new,
            Some((min_step, max_step)),
        );
        prev = Point {
            t: tmp,
            f: f_new,
            g: g_new.copy(),
            gtd: gtd_new,
        };
        (f_new, g_new) = directional_evaluate(p, closure, x0, t, d)?;
        evals += 1;
        gtd_new = item(&g_new.dot(d));
        ls_iter += 1;
    }
    if ls_iter == max_ls {
        // torch leaves the gtd of this bracket undefined; the zoom loop below cannot run then.
        bracket = vec![
            Point {
                t: 0.0,
                f,
                g: g.shallow_clone(),
                gtd,
            },
            Point {
                t,
                f: f_new,
                g: g_new,
                gtd: gtd_new,
            },
        ];
    }
    let order = |b: &[Point]| {
        if b[0].f <= b[b.len() - 1].f {
            (0, 1)
        } else {
            (1, 0)
        }
    };
    let (mut low, mut high) = order(&bracket);
    let mut insuf_progress = false;
    while !done && ls_iter < max_ls {
        if (bracket[1].t - bracket[0].t).abs() * d_norm < tolerance_change {
            break;
        }
        t = cubic_interpolate(
            bracket[0].t,
            bracket[0].f,
            bracket[0].gtd,
            bracket[1].t,
            bracket[1].f,
            bracket[1].gtd,
            None,
        );
        let (bmax, bmin) = (
            bracket[0].t.max(bracket[1].t),
            bracket[0].t.min(bracket[1].t),
        );
        let eps = 0.1 * (bmax - bmin);
        if (bmax - t).min(t - bmin) < eps {
            if insuf_progress || t >= bmax || t <= bmin {
                t = if (t - bmax).abs() < (t - bmin).abs() {
                    bmax - eps
                } else {
                    bmin + eps
                };
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
            bracket[high] = Point {
                t,
                f: f_new,
                g: g_new,
                gtd: gtd_new,
            };
            (low, high) = order(&bracket);
        } else {
            if gtd_new.abs() <= -c2 * gtd {
                done = true;
            } else if gtd_new * (bracket[high].t - bracket[low].t) >= 0.0 {
                let l = &bracket[low];
                bracket[high] = Point {
                    t: l.t,
                    f: l.f,
                    g: l.g.shallow_clone(),
                    gtd: l.gtd,
                };
            }
            bracket[low] = Point {
                t,
                f: f_new,
                g: g_new,
                gtd: gtd_new,
            };
        }
    }
    let best = &bracket[low.min(bracket.len() - 1)];
    Ok(LineSearchResult {
        f: best.f,
        g: best.g.shallow_clone(),
        t: best.t,
        evals,
    })
}
