//! Eigendistortions: the extremal eigenvectors of a model's Fisher information matrix at an
//! image (Berardino et al. 2017), found the way plenoptic's `Eigendistortion` finds them.
//!
//! With `y = f(x)` the model output and `J` its Jacobian at the image, the Fisher matrix under
//! additive white Gaussian noise is `F = JᵀJ`. Its top eigenvectors are the distortions the
//! model is most sensitive to, its bottom ones those it is least sensitive to.
mod method;
mod saving;
mod solvers;

pub use method::{defaults, Method, PowerIterations, PowerPhase, PowerProgress};

use crate::autodiff::{self, FisherProduct};
use crate::error::{Result, SynthError};
use crate::synthesis::with_rng;
use crate::validate::{validate_model, validate_representation, validate_single_image};
use std::ops::ControlFlow;
use synthsweep_models::Model;
use tch::{Kind, Tensor};

/// The eigendistortions of one model at one image: plenoptic's `Eigendistortion`
/// (`plenoptic.synthesize.eigendistortion`; Berardino et al. 2017).
///
/// The image is one (1, C, H, W) float tensor (pixel values usually in [0, 1]); results are
/// eigendistortions of the image's shape with unit L2 norm, and eigenvalues of the Fisher
/// matrix `F = JᵀJ`, in (representation units / pixel units)². Errors of
/// [`Eigendistortion::new`]: [`SynthError::InvalidParam`] for an image that is not a single
/// 4-D float image or a model that loses the gradient, changes the dtype or returns neither
/// 3-D nor 4-D output; [`SynthError::NonFiniteTarget`] when the representation of the image
/// holds NaN or infinite values; [`SynthError::Model`] when the model cannot take the image.
pub struct Eigendistortion<'m> {
    model: &'m dyn Model,
    image_shape: Vec<i64>,
    /// The image as an (n, 1) leaf that requires grad; the model sees a view of it.
    image_flat: Tensor,
    /// The model output as an (m, 1) column, attached to `image_flat` by the graph.
    representation_flat: Tensor,
    jacobian: Option<Tensor>,
    eigendistortions: Option<Tensor>,
    eigenvalues: Option<Tensor>,
    eigenindex: Option<Tensor>,
    iterations: Option<PowerIterations>,
    error_approx: Option<f64>,
    /// The method of the last `synthesize` call.
    method: Option<Method>,
    seed: Option<i64>,
    identity: Option<String>,
}

impl<'m> Eigendistortion<'m> {
    /// Sets up for `image` (1, C, H, W) under `model`: checks both, then runs the model once and
    /// keeps the graph. Like plenoptic, the model check draws one `rand` of the image's shape;
    /// `synthesize` then draws from the generator as it stands.
    pub fn new(image: &Tensor, model: &'m dyn Model) -> Result<Self> {
        Self::build(image, model, None)
    }

    /// As [`Eigendistortion::new`], with every draw reproducible from `seed` and safe from other
    /// threads' draws: the constructor seeds before its draw, and each `synthesize` call seeds
    /// again, replays the constructor's draw and makes its own, all under the crate's RNG lock,
    /// so that each call draws what plenoptic's first call after `torch.manual_seed(seed)` and
    /// the constructor draws.
    pub fn with_seed(image: &Tensor, model: &'m dyn Model, seed: i64) -> Result<Self> {
        Self::build(image, model, Some(seed))
    }

    fn build(image: &Tensor, model: &'m dyn Model, seed: Option<i64>) -> Result<Self> {
        validate_single_image(image, "image")?;
        with_rng(seed, || validate_model(model, image))?;
        let image_shape = image.size();
        let image_flat = image
            .detach()
            .reshape([-1, 1])
            .copy()
            .set_requires_grad(true);
        Self::bound(model, image_shape, image_flat, seed, None)
    }

    /// Runs `model` once on `image_flat` (viewed as `image_shape`), keeping the graph the
    /// Jacobian products differentiate through; no results yet.
    fn bound(
        model: &'m dyn Model,
        image_shape: Vec<i64>,
        image_flat: Tensor,
        seed: Option<i64>,
        identity: Option<String>,
    ) -> Result<Self> {
        let representation = model.forward(&image_flat.view(image_shape.as_slice()));
        validate_representation(model, &representation, "the image")?;
        let representation_flat = representation.squeeze().reshape([-1, 1]);
        Ok(Eigendistortion {
            model,
            image_shape,
            image_flat,
            representation_flat,
            jacobian: None,
            eigendistortions: None,
            eigenvalues: None,
            eigenindex: None,
            iterations: None,
            error_approx: None,
            method: None,
            seed,
            identity,
        })
    }

    /// Moves the eigendistortion to `device` as `kind`, bound to `model`, which must already
    /// be there (`Model::to` on the same or another instance): the image is moved and the
    /// model run on it there once more (the Jacobian products differentiate through that
    /// graph); results of an earlier `synthesize` are dropped. The constructor's draw (the
    /// model check) stays made where it was: built on the CPU and moved, `randomized_svd`
    /// (which draws on the CPU generator) and `exact` (no draw) give the CPU's results; the
    /// power method draws its start on the image's device.
    ///
    /// # Errors
    /// As [`Eigendistortion::new`] for the representation on the device.
    pub fn to<'b>(
        self,
        device: tch::Device,
        kind: Kind,
        model: &'b dyn Model,
    ) -> Result<Eigendistortion<'b>> {
        let image_flat = self
            .image_flat
            .detach()
            .to_device(device)
            .to_kind(kind)
            .set_requires_grad(true);
        Eigendistortion::bound(
            model,
            self.image_shape,
            image_flat,
            self.seed,
            self.identity,
        )
    }

    /// The random draws `method` makes, in plenoptic's order: for power, the initial blocks of
    /// both runs (nothing else draws between them); for randomized_svd, the probes and the
    /// error-estimate test vectors (drawn on the CPU generator, then moved, as plenoptic does).
    fn draws(&self, method: &Method) -> Result<Vec<Tensor>> {
        let draw = || -> Result<Vec<Tensor>> {
            let (n, x) = (self.n(), &self.image_flat);
            let cpu = (Kind::Float, tch::Device::Cpu);
            Ok(match *method {
                Method::Exact => vec![],
                Method::Power { k, .. } => {
                    let options = (x.kind(), x.device());
                    vec![
                        Tensor::f_randn([n, k as i64], options)?,
                        Tensor::f_randn([n, k as i64], options)?,
                    ]
                }
                Method::RandomizedSvd { k, p, .. } => vec![
                    Tensor::f_randn([n, (k + p) as i64], cpu)?.to_device(x.device()),
                    Tensor::f_randn([n, 20], cpu)?.to_device(x.device()),
                ],
            })
        };
        with_rng(self.seed, || {
            if self.seed.is_some() {
                let dummy = (self.image_flat.kind(), self.image_flat.device());
                let _validate_model_draw = Tensor::f_rand(self.image_shape.as_slice(), dummy)?;
            }
            draw()
        })
    }

    /// Finds the eigendistortions with `method`, replacing any earlier results.
    pub fn synthesize(&mut self, method: Method) -> Result<()> {
        self.synthesize_with(method, &mut |_| ControlFlow::Continue(()))
    }

    /// As [`Eigendistortion::synthesize`], calling `callback` after every power iteration;
    /// `ControlFlow::Break` stops with [`SynthError::Cancelled`]. Other methods never call it.
    pub fn synthesize_with(
        &mut self,
        method: Method,
        callback: &mut dyn FnMut(&PowerProgress) -> ControlFlow<()>,
    ) -> Result<()> {
        self.check_method(&method)?;
        let draws = self.draws(&method)?;
        self.iterations = None;
        self.error_approx = None;
        let n = self.n();
        let (values, vectors, index) = match method {
            Method::Exact => {
                let j = self.compute_jacobian()?.shallow_clone();
                let (values, vectors) = solvers::exact(&j)?;
                (
                    values,
                    vectors,
                    Tensor::arange(n, (Kind::Int64, tch::Device::Cpu)),
                )
            }
            Method::Power {
                k,
                max_iter,
                stop_criterion,
            } => {
                let fisher = FisherProduct::new(&self.representation_flat, &self.image_flat);
                let (k, max_iter) = (k as i64, max_iter);
                let top = solvers::power(
                    &fisher,
                    &draws[0],
                    None,
                    stop_criterion,
                    max_iter,
                    PowerPhase::Top,
                    callback,
                )?;
                let shift = top.eigenvalues.get(0);
                let bottom = solvers::power(
                    &fisher,
                    &draws[1],
                    Some(&shift),
                    stop_criterion,
                    max_iter,
                    PowerPhase::Bottom,
                    callback,
                )?;
                self.iterations = Some(PowerIterations {
                    top: top.iterations,
                    bottom: bottom.iterations,
                });
                let cpu = (Kind::Int64, tch::Device::Cpu);
                let index = Tensor::cat(
                    &[Tensor::arange(k, cpu), Tensor::arange_start(n - k, n, cpu)],
                    0,
                );
                (
                    Tensor::cat(&[top.eigenvalues, bottom.eigenvalues], 0),
                    Tensor::cat(&[top.eigenvectors, bottom.eigenvectors], 1),
                    index,
                )
            }
            Method::RandomizedSvd { k, q, .. } => {
                let fisher = FisherProduct::new(&self.representation_flat, &self.image_flat);
                let out = solvers::randomized_svd(&fisher, k as i64, &draws[0], &draws[1], q)?;
                self.error_approx = Some(out.error_approx);
                (
                    out.eigenvalues,
                    out.eigenvectors,
                    Tensor::arange(k as i64, (Kind::Int64, tch::Device::Cpu)),
                )
            }
        };
        let count = vectors.size()[1];
        let image = [
            count,
            self.image_shape[1],
            self.image_shape[2],
            self.image_shape[3],
        ];
        self.eigendistortions = Some(vectors.detach().tr().reshape(image));
        self.eigenvalues = Some(values.detach().abs());
        self.eigenindex = Some(index);
        self.method = Some(method);
        Ok(())
    }

    fn check_method(&self, method: &Method) -> Result<()> {
        method.validate()?;
        let (n, m) = (self.n(), self.m());
        let check_k = |k: usize| -> Result<()> {
            if k == 0 || k as i64 > n {
                return Err(SynthError::invalid(
                    "k",
                    format!("must be between 1 and the number of pixels n = {n}, got {k}"),
                ));
            }
            Ok(())
        };
        match *method {
            Method::Exact => {
                let biggest = (m * n).max(n * n);
                if biggest > defaults::EXACT_MAX_ELEMENTS {
                    return Err(SynthError::invalid(
                        "method",
                        format!(
                            "exact needs the full Jacobian ({m} × {n}) and Fisher matrix ({n} × {n}), \
                             {biggest} elements, above the limit of {}; use power or randomized_svd",
                            defaults::EXACT_MAX_ELEMENTS
                        ),
                    ));
                }
            }
            Method::Power {
                k,
                max_iter,
                stop_criterion,
            } => {
                check_k(k)?;
                if max_iter == 0 {
                    return Err(SynthError::invalid("max_iter", "must be greater than zero"));
                }
                if !(stop_criterion >= 0.0 && stop_criterion.is_finite()) {
                    return Err(SynthError::invalid(
                        "stop_criterion",
                        format!("must be a finite number >= 0, got {stop_criterion}"),
                    ));
                }
            }
            Method::RandomizedSvd { k, .. } => check_k(k)?,
        }
        Ok(())
    }

    /// The full Jacobian (m, n) of the representation with respect to the image, computed once
    /// and kept (as `exact` keeps it).
    pub fn compute_jacobian(&mut self) -> Result<&Tensor> {
        if self.jacobian.is_none() {
            self.jacobian = Some(autodiff::jacobian(
                &self.representation_flat,
                &self.image_flat,
            )?);
        }
        Ok(self.jacobian.as_ref().expect("just computed"))
    }

    /// Number of pixels n (the input dimension).
    pub fn n(&self) -> i64 {
        self.image_flat.size()[0]
    }

    /// Number of model outputs m.
    pub fn m(&self) -> i64 {
        self.representation_flat.size()[0]
    }

    /// The model whose Fisher matrix is analysed.
    pub fn model(&self) -> &dyn Model {
        self.model
    }

    /// The image (1, C, H, W), detached.
    pub fn image(&self) -> Tensor {
        self.image_flat.detach().view(self.image_shape.as_slice())
    }

    /// The model output on the image as an (m, 1) column, detached.
    pub fn representation_flat(&self) -> Tensor {
        self.representation_flat.detach()
    }

    /// The Jacobian, set by `exact` (or [`Eigendistortion::compute_jacobian`]).
    pub fn jacobian(&self) -> Option<&Tensor> {
        self.jacobian.as_ref()
    }

    /// The eigendistortions as images (count, C, H, W), in the order of `eigenvalues`: all n
    /// (exact), top k then bottom k (power; the bottom block in the order the last QR left it), or
    /// top k (randomized_svd). Each has unit L2 norm; the sign is arbitrary.
    pub fn eigendistortions(&self) -> Option<&Tensor> {
        self.eigendistortions.as_ref()
    }

    /// Absolute eigenvalue estimates, one per eigendistortion.
    pub fn eigenvalues(&self) -> Option<&Tensor> {
        self.eigenvalues.as_ref()
    }

    /// The index in the full (descending) spectrum of each eigendistortion (int64).
    pub fn eigenindex(&self) -> Option<&Tensor> {
        self.eigenindex.as_ref()
    }

    /// The method (with its parameters) of the last `synthesize` call, or of the loaded one.
    pub fn method(&self) -> Option<Method> {
        self.method
    }

    /// Iterations per phase of the last `power` run.
    pub fn iterations(&self) -> Option<PowerIterations> {
        self.iterations
    }

    /// The last `randomized_svd` run's estimate of how far its subspace is from `F`'s range:
    /// the mean over 20 random probes ω of `‖Fω − QQᵀFω‖`.
    pub fn error_approx(&self) -> Option<f64> {
        self.error_approx
    }
}
