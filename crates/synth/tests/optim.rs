//! The optimizers against torch 2.13 on small problems (expected values printed by
//! torch.optim with 1 thread): L-BFGS with and without strong-Wolfe line search on the
//! Rosenbrock function, SGD (momentum, Nesterov) and plain Adam on a quadratic.
use synthsweep_synth::lbfgs::{LbfgsOptions, LineSearch};
use synthsweep_synth::optim::{AdamOptions, Optimizer, OptimizerConfig, SgdOptions};
use synthsweep_synth::Result;
use tch::{Kind, Tensor};

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.detach().to_kind(Kind::Double).reshape([-1])).unwrap()
}

fn close(what: &str, actual: &[f64], expected: &[f64], rtol: f64, atol: f64) {
    assert_eq!(
        actual.len(),
        expected.len(),
        "{what}: {actual:?} vs {expected:?}"
    );
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= atol + rtol * e.abs(),
            "{what}[{i}]: {a} vs {e} (all: {actual:?})"
        );
    }
}

/// Runs `steps` optimizer steps on `f`, returning the losses and the final parameter.
fn optimize(
    config: &OptimizerConfig,
    x0: &[f32],
    steps: usize,
    f: impl Fn(&Tensor) -> Tensor,
) -> (Vec<f64>, Vec<f64>, usize) {
    tch::set_num_threads(1);
    let x = Tensor::from_slice(x0).set_requires_grad(true);
    let mut opt = Optimizer::new(config, &x).unwrap();
    let mut losses = Vec::new();
    let mut evals = 0;
    for _ in 0..steps {
        let loss = opt
            .step(|| -> Result<Tensor> {
                let mut g = x.shallow_clone();
                g.zero_grad();
                let l = f(&x);
                l.backward();
                evals += 1;
                Ok(l)
            })
            .unwrap();
        losses.push(loss.double_value(&[]));
    }
    (losses, values(&x), evals)
}

fn rosenbrock(x: &Tensor) -> Tensor {
    let (a, b) = (x.get(0), x.get(1));
    (a.neg() + 1.0).square() + (b - a.square()).square() * 100.0
}

fn quadratic(x: &Tensor) -> Tensor {
    (x.square() * Tensor::from_slice(&[1.0f32, 2.0, 3.0])).sum(Kind::Float)
}

/// Every closure value of one L-BFGS step on Rosenbrock from (-1.5, 2), and the losses and
/// final point of `steps` steps.
fn lbfgs_trace(options: LbfgsOptions, steps: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    tch::set_num_threads(1);
    let x = Tensor::from_slice(&[-1.5f32, 2.0]).set_requires_grad(true);
    let mut opt = Optimizer::new(&OptimizerConfig::Lbfgs(options), &x).unwrap();
    let (mut trace, mut losses) = (Vec::new(), Vec::new());
    for step in 0..steps {
        let loss = opt
            .step(|| -> Result<Tensor> {
                let mut g = x.shallow_clone();
                g.zero_grad();
                let l = rosenbrock(&x);
                l.backward();
                if step == 0 {
                    trace.push(l.double_value(&[]));
                }
                Ok(l)
            })
            .unwrap();
        losses.push(loss.double_value(&[]));
    }
    (trace, losses, values(&x))
}

// The same algorithm takes the same path as torch.optim.LBFGS: the same number of closure
// calls with the same values, up to rounding (torch keeps some scalars in float32 tensors,
// we keep the line search in f64). Rosenbrock amplifies that rounding over many steps, so
// the first 12 calls are compared, then convergence.
#[test]
fn lbfgs_without_line_search_matches_torch() {
    let torch = [
        12.5, 288.824127, 13.9264746, 29.5163307, 6.02801085, 5.83236694, 5.826406, 5.82454681,
        5.80059767, 5.75711346, 5.6454463, 5.49029589,
    ];
    let (trace, losses, x) = lbfgs_trace(LbfgsOptions::default(), 4);
    assert_eq!(
        trace.len(),
        20,
        "one call, then one per inner iteration but the last"
    );
    close("closure values", &trace[..12], &torch, 3e-5, 0.0);
    close(
        "losses",
        &losses[..2],
        &[12.5, 3.1733570098876953],
        1e-4,
        0.0,
    );
    assert!(losses.windows(2).all(|w| w[1] < w[0]), "{losses:?}");
    assert!(x.iter().all(|v| v.is_finite()), "{x:?}");
}

#[test]
fn lbfgs_with_strong_wolfe_matches_torch() {
    let torch = [
        12.5, 288.824127, 5.87581015, 5.86357403, 5.86185265, 5.85190201, 5.83116961, 5.77276373,
        5.63976049, 5.40029955, 4.83358383, 4.15640545,
    ];
    let options = LbfgsOptions {
        line_search_fn: Some(LineSearch::StrongWolfe),
        history_size: 3,
        ..Default::default()
    };
    let (trace, _, _) = lbfgs_trace(options, 1);
    assert_eq!(trace.len(), 25, "torch makes 25 calls");
    close("closure values", &trace[..12], &torch, 3e-5, 0.0);
    // torch: losses [12.5, 1.3085441589355469, ~3e-11, ~3e-11], x -> (1, 1)
    let options = LbfgsOptions {
        line_search_fn: Some(LineSearch::StrongWolfe),
        ..Default::default()
    };
    let (_, losses, x) = lbfgs_trace(options, 4);
    close(
        "losses",
        &losses[..2],
        &[12.5, 1.3085441589355469],
        1e-3,
        0.0,
    );
    assert!(losses[3] < 1e-6, "{losses:?}");
    close("x", &x, &[1.0, 1.0], 0.0, 1e-3);
}

#[test]
fn sgd_and_adam_match_torch() {
    let sgd = OptimizerConfig::Sgd(SgdOptions {
        lr: 0.1,
        momentum: 0.9,
        ..Default::default()
    });
    let (losses, x, _) = optimize(&sgd, &[1.0, -2.0, 3.0], 10, quadratic);
    let expected = [
        36.0,
        7.840000152587891,
        4.110398769378662,
        22.02817153930664,
        21.277572631835938,
        6.017459869384766,
        5.72084903717041,
        14.444188117980957,
        11.264719009399414,
        3.6607506275177,
    ];
    close("sgd losses", &losses, &expected, 1e-5, 0.0);
    close(
        "sgd x",
        &x,
        &[
            0.004399822559207678,
            -1.0333573818206787,
            -1.1443933248519897,
        ],
        1e-4,
        1e-6,
    );

    let nesterov = OptimizerConfig::Sgd(SgdOptions {
        lr: 0.1,
        momentum: 0.9,
        nesterov: true,
        weight_decay: 0.01,
        ..Default::default()
    });
    let (losses, x, _) = optimize(&nesterov, &[1.0, -2.0, 3.0], 10, quadratic);
    let expected = [
        36.0,
        1.379241704940796,
        6.503358364105225,
        3.9919347763061523,
        1.184247612953186,
        0.48964357376098633,
        0.2863287329673767,
        0.1820068508386612,
        0.11360066384077072,
        0.042346447706222534,
    ];
    close("nesterov losses", &losses, &expected, 1e-5, 0.0);
    close(
        "nesterov x",
        &x,
        &[
            0.053880494087934494,
            -0.04294104501605034,
            -0.025896664708852768,
        ],
        1e-4,
        1e-6,
    );

    let adam = OptimizerConfig::Adam(AdamOptions {
        lr: 0.1,
        amsgrad: false,
        weight_decay: 0.01,
        ..Default::default()
    });
    let (losses, x, _) = optimize(&adam, &[1.0, -2.0, 3.0], 10, quadratic);
    let expected = [
        36.0,
        33.26000213623047,
        30.643583297729492,
        28.15264320373535,
        25.788631439208984,
        23.55248260498047,
        21.444528579711914,
        19.464427947998047,
        17.611083984375,
        15.882597923278809,
    ];
    close("adam losses", &losses, &expected, 1e-6, 0.0);
    close(
        "adam x",
        &x,
        &[0.07624917477369308, -1.024586796760559, 2.014188528060913],
        1e-5,
        1e-7,
    );
}

#[test]
fn state_export_import_round_trips() {
    tch::set_num_threads(1);
    for cfg in [
        OptimizerConfig::default(),
        OptimizerConfig::Sgd(SgdOptions {
            lr: 1e-4,
            momentum: 0.9,
            ..Default::default()
        }),
        OptimizerConfig::Lbfgs(LbfgsOptions {
            max_iter: 3,
            line_search_fn: Some(LineSearch::StrongWolfe),
            ..Default::default()
        }),
    ] {
        let run = |x: &Tensor, opt: &mut Optimizer, n: usize| {
            for _ in 0..n {
                let _ = opt
                    .step(|| -> Result<Tensor> {
                        let mut g = x.shallow_clone();
                        g.zero_grad();
                        let l = rosenbrock(x);
                        l.backward();
                        Ok(l)
                    })
                    .unwrap();
            }
        };
        let x = Tensor::from_slice(&[-1.5f32, 2.0]).set_requires_grad(true);
        let mut opt = Optimizer::new(&cfg, &x).unwrap();
        run(&x, &mut opt, 6);
        let y = Tensor::from_slice(&[-1.5f32, 2.0]).set_requires_grad(true);
        let mut first = Optimizer::new(&cfg, &y).unwrap();
        run(&y, &mut first, 3);
        let state = first.export_state();
        let z = y.detach().copy().set_requires_grad(true);
        let mut second = Optimizer::new(&cfg, &z).unwrap();
        second.import_state(&state).unwrap();
        run(&z, &mut second, 3);
        let (a, b) = (values(&x), values(&z));
        assert!(a.iter().all(|v| v.is_finite()), "{cfg:?}: {a:?}");
        assert_eq!(a, b, "{cfg:?}");
    }
}
