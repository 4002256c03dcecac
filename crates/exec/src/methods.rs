//! One runner per synthesis kind: task parameters -> synthesis -> records. Each takes its
//! options from the task's typed parameters (`synthsweep_core::params`, defaults filled in
//! and checked at plan time), as the synthesis's own option structs.
use crate::checkpoint::preempted;
use crate::records::{image_row, loss_rows, scalar, stack_rows};
use crate::worker::{Records, TaskError, Worker};
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use synthsweep_core::params::{
    EigendistortionParams, GeodesicParams, MadParams, MetamerCtfParams, MetamerParams,
    MethodParams, SimpleMetamerParams,
};
use synthsweep_models::image_io::load_image_with;
use synthsweep_store::{EigenRow, LossRow, ScoreRow};
use synthsweep_sweep::{SynthKind, Task, TaskImages};
use synthsweep_synth::eigendistortion::PowerProgress;
use synthsweep_synth::geodesic::pixel_change_converged;
use synthsweep_synth::synthesis::loss_converged;
use synthsweep_synth::{
    Eigendistortion, Geodesic, GeodesicSynthesizeOptions, MadCompetition, Metamer, MetamerCtf,
    OptimizerConfig, Progress, SimpleMetamer, SynthError, SynthesizeOptions,
};
use tch::Tensor;

type Result<T> = std::result::Result<T, TaskError>;

/// One image of the task, loaded as plenoptic's `load_images(path, as_gray)`.
fn load(worker: &Worker, task: &Task, img: &synthsweep_sweep::ImageRef) -> Result<Tensor> {
    Ok(load_image_with(&img.path, task.as_gray)?.to_device(worker.device))
}

fn the_image(worker: &Worker, task: &Task) -> Result<Tensor> {
    match &task.images {
        TaskImages::One(a) => load(worker, task, a),
        TaskImages::Pair(..) => Err(TaskError::Failed(
            "this method takes one image, not a pair".into(),
        )),
    }
}

fn the_pair(worker: &Worker, task: &Task) -> Result<(Tensor, Tensor)> {
    match &task.images {
        TaskImages::Pair(a, b) => Ok((load(worker, task, a)?, load(worker, task, b)?)),
        TaskImages::One(_) => Err(TaskError::Failed(
            "this method takes a pair of images".into(),
        )),
    }
}

fn required<'a>(
    v: &'a Option<std::sync::Arc<serde_json::Value>>,
    what: &str,
) -> Result<&'a serde_json::Value> {
    v.as_deref()
        .ok_or_else(|| TaskError::Failed(format!("task has no {what}")))
}

fn seed(task: &Task) -> i64 {
    task.seed as i64
}

/// The task's parameters as `kind`'s (the planner built them for the task's kind).
fn params_of<'t, T>(
    task: &'t Task,
    pick: impl FnOnce(&'t MethodParams) -> Option<&'t T>,
) -> Result<&'t T> {
    pick(&task.params).ok_or_else(|| {
        TaskError::Failed(format!(
            "task of kind {} carries parameters of kind {}",
            task.synth,
            task.params.kind()
        ))
    })
}

/// The per-iteration callback's answer: stop when `cancel` is set.
fn go_on(cancel: &AtomicBool) -> ControlFlow<()> {
    if cancel.load(Ordering::Relaxed) {
        ControlFlow::Break(())
    } else {
        ControlFlow::Continue(())
    }
}

fn short(id: &str) -> &str {
    &id[..12.min(id.len())]
}

/// Loads the task's checkpoint into `synthesis`, if the worker has one for it, and returns
/// the iterations it had done (0 when starting fresh). A checkpoint that does not load is
/// discarded and the synthesis rebuilt with `build`: the task starts again from scratch.
fn resume<S>(
    worker: &Worker,
    task: &Task,
    synthesis: &mut S,
    build: impl Fn() -> Result<S>,
    load: impl Fn(&mut S, &Path) -> synthsweep_synth::Result<()>,
    done: impl Fn(&S) -> usize,
) -> Result<usize> {
    let Some((ck, path)) = worker
        .checkpoints()
        .and_then(|ck| ck.find(task.id()).map(|p| (ck, p)))
    else {
        return Ok(0);
    };
    match load(synthesis, &path) {
        Ok(()) => {
            let n = done(synthesis);
            tracing::info!(
                "task {}: resuming from checkpoint {} at iteration {n}",
                short(task.id()),
                path.display()
            );
            ck.mark_resumed(task.id());
            Ok(n)
        }
        Err(e) => {
            tracing::warn!(
                "task {}: checkpoint {} not usable, starting again: {e}",
                short(task.id()),
                path.display()
            );
            ck.discard(task.id());
            *synthesis = build()?;
            Ok(0)
        }
    }
}

/// A synthesis call's result; when it was cancelled by a preemption signal, the state is
/// first saved as the task's checkpoint with `save`.
fn checkpoint_on_preemption<T>(
    worker: &Worker,
    task: &Task,
    result: synthsweep_synth::Result<T>,
    save: impl FnOnce(&Path) -> synthsweep_synth::Result<()>,
) -> Result<T> {
    match result {
        Err(SynthError::Cancelled { iteration }) if preempted() => {
            if let Some(ck) = worker.checkpoints() {
                match ck.save(task.id(), save) {
                    Ok(p) => tracing::info!(
                        "task {}: preempted after iteration {iteration}, checkpoint saved to {}",
                        short(task.id()),
                        p.display()
                    ),
                    Err(e) => tracing::warn!("task {}: preempted; {e}", short(task.id())),
                }
            }
            Err(TaskError::Cancelled)
        }
        other => Ok(other?),
    }
}

/// The options for the rest of a resumed run (`max_iter` minus the iterations done), or
/// `None` when the saved state had already finished: all iterations done, or the stop rule
/// met at the iteration the preemption interrupted.
fn remaining(mut run: SynthesizeOptions, losses: &[f64], done: usize) -> Option<SynthesizeOptions> {
    if done == 0 {
        return Some(run);
    }
    run.max_iter = run.max_iter.saturating_sub(done);
    let converged = loss_converged(losses, run.stop_criterion, run.stop_iters_to_check);
    (run.max_iter > 0 && !converged).then_some(run)
}

/// Runs the task's method on `worker`.
pub fn run(worker: &mut Worker, task: &Task, cancel: &AtomicBool) -> Result<Records> {
    match task.synth {
        SynthKind::Mad => mad(worker, task, cancel),
        SynthKind::Metamer => metamer(worker, task, cancel),
        SynthKind::MetamerCtf => metamer_ctf(worker, task, cancel),
        SynthKind::SimpleMetamer => simple_metamer(worker, task),
        SynthKind::Eigendistortion => eigendistortion(worker, task, cancel),
        SynthKind::Geodesic => geodesic(worker, task, cancel),
        SynthKind::Score => score(worker, task),
    }
}

fn saved_rows(stack: &Tensor, every: Option<usize>) -> Vec<synthsweep_store::ImageRow> {
    match every {
        Some(n) if stack.numel() > 0 => stack_rows("saved", stack, |i| Some(i * n as i64), false),
        _ => Vec::new(),
    }
}

fn mad(worker: &mut Worker, task: &Task, cancel: &AtomicBool) -> Result<Records> {
    let image = the_image(worker, task)?;
    let k1 = worker.ensure_metric(required(&task.optimized_metric, "optimized_metric")?)?;
    let k2 = worker.ensure_metric(required(&task.reference_metric, "reference_metric")?)?;
    let (m1, m2) = (worker.metric(&k1), worker.metric(&k2));
    m1.check_input(&image.size())?;
    m2.check_input(&image.size())?;
    let p: &MadParams = params_of(task, |p| match p {
        MethodParams::Mad(p) => Some(p),
        _ => None,
    })?;
    let mut opts = p.options.clone();
    opts.seed = Some(seed(task));
    let run = p.synthesize.clone();
    let minmax = task
        .minmax
        .ok_or_else(|| TaskError::Failed("MAD needs minmax".into()))?;
    let build = || Ok(MadCompetition::new(&image, m1, m2, minmax, opts.clone())?);
    let mut mad = build()?;
    let done = resume(
        worker,
        task,
        &mut mad,
        build,
        |m, p| m.load(p),
        |m| m.losses().len(),
    )?;
    if let Some(run) = remaining(run, mad.losses(), done) {
        let r = mad.synthesize_with(&run, &mut |_: &Progress| go_on(cancel));
        checkpoint_on_preemption(worker, task, r, |p| mad.save(p))?;
    }
    Ok(mad_records(&image, &mad))
}

/// A finished MAD competition's records.
fn mad_records(image: &Tensor, mad: &MadCompetition<'_>) -> Records {
    let n = mad.losses().len();
    let (opt, reference) = (mad.optimized_metric_loss(), mad.reference_metric_loss());
    let mut losses = loss_rows(mad.losses(), mad.gradient_norm(), mad.pixel_change_norm());
    for (i, row) in losses.iter_mut().enumerate() {
        row.optimized_metric_loss = opt.get(i).copied();
        row.reference_metric_loss = reference.get(i).copied();
    }
    // The final image's objective and metrics: the row after the last step.
    let final_loss = tch::no_grad(|| scalar(&mad.objective_function()));
    losses.push(LossRow {
        iteration: n as i64,
        loss: final_loss,
        optimized_metric_loss: opt.get(n).copied(),
        reference_metric_loss: reference.get(n).copied(),
        ..Default::default()
    });
    // An input or final image has no iteration (schemas/images.json); snapshots do.
    let mut images = vec![
        image_row("target_image", 0, None, image, false),
        image_row("initial_image", 0, None, mad.initial_image(), false),
        image_row("mad_image", 0, None, mad.mad_image(), false),
    ];
    images.extend(saved_rows(&mad.saved_mad_image(), mad.store_progress()));
    Records {
        iterations: n as i64,
        final_loss: Some(final_loss),
        metric_tradeoff_lambda: Some(mad.metric_tradeoff_lambda()),
        losses,
        images,
        ..Default::default()
    }
}

/// plenoptic's representation error (`plenoptic.synthesize.metamer._representation_error`,
/// what `plot_representation_error` draws; 1.1.0 has no public method for it):
/// model(metamer) − model(target) at the final metamer, batch 0, as an `images` row of role
/// `representation_error`. A (channels, height, width) representation is kept as it is
/// (one of the model's output maps per channel); any other shape (e.g. the
/// Portilla-Simoncelli statistics vector) is flattened to one row, 1 × 1 × N, in the
/// model's output order. Its PNG is rescaled to its own [min, max]. One forward pass of
/// each image, no gradient.
fn representation_error_row(
    model: &dyn synthsweep_models::Model,
    metamer: &Tensor,
    target: &Tensor,
) -> synthsweep_store::ImageRow {
    let e = tch::no_grad(|| model.forward(metamer) - model.forward(target));
    let e = if e.dim() == 4 {
        e
    } else {
        e.get(0).reshape([1, 1, 1, -1])
    };
    image_row("representation_error", 0, None, &e, true)
}

fn metamer(worker: &mut Worker, task: &Task, cancel: &AtomicBool) -> Result<Records> {
    let image = the_image(worker, task)?;
    let key = worker.ensure_model(required(&task.model, "model")?)?;
    let model = worker.model(&key);
    model.check_input(&image.size())?;
    let p: &MetamerParams = params_of(task, |p| match p {
        MethodParams::Metamer(p) => Some(p),
        _ => None,
    })?;
    let mut opts = p.options.clone();
    opts.seed = Some(seed(task));
    let run = p.synthesize.clone();
    let build = || Ok(Metamer::new(&image, model, opts.clone())?);
    let mut m = build()?;
    let initial = m.metamer().detach().copy();
    let done = resume(
        worker,
        task,
        &mut m,
        build,
        |m, p| m.load(p),
        |m| m.losses().len(),
    )?;
    if let Some(rest) = remaining(run.clone(), m.losses(), done) {
        let r = m.synthesize_with(&rest, &mut |_: &Progress| go_on(cancel));
        checkpoint_on_preemption(worker, task, r, |p| m.save(p))?;
    }
    Ok(metamer_records(&image, &initial, &m, &run))
}

/// A finished metamer's records (`initial`: its starting image).
fn metamer_records(
    image: &Tensor,
    initial: &Tensor,
    m: &Metamer<'_>,
    run: &SynthesizeOptions,
) -> Records {
    let n = m.losses().len() as i64;
    let mut images = vec![
        image_row("target_image", 0, None, image, false),
        image_row("initial_image", 0, None, initial, false),
        image_row("metamer", 0, None, m.metamer(), false),
        representation_error_row(m.model(), m.metamer(), image),
    ];
    images.extend(saved_rows(
        &m.saved_metamer(),
        Some(run.store_progress.every()).filter(|&e| e > 0),
    ));
    Records {
        iterations: n,
        final_loss: Some(tch::no_grad(|| scalar(&m.objective_function()))),
        losses: loss_rows(m.losses(), m.gradient_norm(), m.pixel_change_norm()),
        images,
        ..Default::default()
    }
}

fn metamer_ctf(worker: &mut Worker, task: &Task, cancel: &AtomicBool) -> Result<Records> {
    let image = the_image(worker, task)?;
    let key = worker.ensure_model(required(&task.model, "model")?)?;
    let model = worker.model(&key);
    model.check_input(&image.size())?;
    let p: &MetamerCtfParams = params_of(task, |p| match p {
        MethodParams::MetamerCtf(p) => Some(p),
        _ => None,
    })?;
    let mut opts = p.options.clone();
    opts.seed = Some(seed(task));
    let run = p.synthesize.clone();
    let build = || {
        Ok(MetamerCtf::new(
            &image,
            model,
            opts.clone(),
            p.coarse_to_fine,
        )?)
    };
    let mut m = build()?;
    let initial = m.metamer().detach().copy();
    let done = resume(
        worker,
        task,
        &mut m,
        build,
        |m, p| m.load(p),
        |m| m.losses().len(),
    )?;
    // CTF's stop rule counts iterations within one `synthesize` call (as plenoptic does), so
    // only max_iter is carried over here.
    let mut rest = run.clone();
    rest.max_iter = rest.max_iter.saturating_sub(done);
    if rest.max_iter > 0 {
        let r = m.synthesize_with(&rest, &mut |_: &Progress| go_on(cancel));
        checkpoint_on_preemption(worker, task, r, |p| m.save(p))?;
    }
    let n = m.losses().len() as i64;
    let mut images = vec![
        image_row("target_image", 0, None, &image, false),
        image_row("initial_image", 0, None, &initial, false),
        image_row("metamer", 0, None, m.metamer(), false),
        representation_error_row(model, m.metamer(), &image),
    ];
    images.extend(saved_rows(
        &m.saved_metamer(),
        Some(run.store_progress.every()).filter(|&e| e > 0),
    ));
    Ok(Records {
        iterations: n,
        final_loss: Some(tch::no_grad(|| scalar(&m.objective_function()))),
        losses: ctf_loss_rows(&m),
        images,
        ..Default::default()
    })
}

/// Loss rows of a coarse-to-fine metamer: the standard series, plus each iteration's scale
/// (from `scales_timing`: a scale runs from its first to its last iteration, the last one
/// open while it is current) and its scale-restricted loss.
fn ctf_loss_rows(m: &MetamerCtf<'_>) -> Vec<LossRow> {
    let mut rows = loss_rows(m.losses(), m.gradient_norm(), m.pixel_change_norm());
    let scale_of = |i: usize| {
        m.scales_timing()
            .iter()
            .find(|(_, t)| t.first().is_some_and(|&s| s <= i) && t.get(1).is_none_or(|&e| i <= e))
            .map(|(name, _)| name.clone())
    };
    for (i, row) in rows.iter_mut().enumerate() {
        row.scale = scale_of(i);
        row.scale_loss = m.scales_loss().get(i).copied();
    }
    rows
}

/// No checkpoint: SimpleMetamer's `synthesize` takes no per-iteration callback, so a
/// preemption cannot stop it mid-run; an interrupted task starts again from scratch.
fn simple_metamer(worker: &mut Worker, task: &Task) -> Result<Records> {
    let image = the_image(worker, task)?;
    let key = worker.ensure_model(required(&task.model, "model")?)?;
    let model = worker.model(&key);
    model.check_input(&image.size())?;
    let p: &SimpleMetamerParams = params_of(task, |p| match p {
        MethodParams::SimpleMetamer(p) => Some(p),
        _ => None,
    })?;
    let mut m = SimpleMetamer::new(&image, model, Some(seed(task)))?;
    let initial = m.metamer().detach().copy();
    m.synthesize(p.max_iter, Some(&p.optimizer))?;
    let n = m.losses().len() as i64;
    Ok(Records {
        iterations: n,
        losses: loss_rows(m.losses(), &[], &[]),
        images: vec![
            image_row("target_image", 0, None, &image, false),
            image_row("initial_image", 0, None, &initial, false),
            image_row("metamer", 0, None, m.metamer(), false),
            representation_error_row(model, m.metamer(), &image),
        ],
        ..Default::default()
    })
}

fn eigendistortion(worker: &mut Worker, task: &Task, cancel: &AtomicBool) -> Result<Records> {
    let image = the_image(worker, task)?;
    let key = worker.ensure_model(required(&task.model, "model")?)?;
    let model = worker.model(&key);
    model.check_input(&image.size())?;
    let p: &EigendistortionParams = params_of(task, |p| match p {
        MethodParams::Eigendistortion(p) => Some(p),
        _ => None,
    })?;
    let method = p.method;
    let mut e = Eigendistortion::with_seed(&image, model, seed(task))?;
    e.synthesize_with(method, &mut |_: &PowerProgress| go_on(cancel))?;
    let values = e
        .eigenvalues()
        .ok_or_else(|| TaskError::Failed("no eigenvalues".into()))?;
    let index = e
        .eigenindex()
        .ok_or_else(|| TaskError::Failed("no eigenindex".into()))?;
    let vectors = e
        .eigendistortions()
        .ok_or_else(|| TaskError::Failed("no eigendistortions".into()))?;
    let values: Vec<f64> = Vec::try_from(values.to_kind(tch::Kind::Double).reshape([-1]))
        .map_err(|e: tch::TchError| e.to_string())?;
    let index: Vec<i64> = Vec::try_from(index.to_kind(tch::Kind::Int64).reshape([-1]))
        .map_err(|e: tch::TchError| e.to_string())?;
    let eigen = values
        .iter()
        .zip(&index)
        .map(|(&v, &i)| EigenRow {
            task_id: String::new(),
            eigenindex: i,
            eigenvalue: v,
        })
        .collect();
    // Only the eigendistortions plenoptic returns as images (exact: all n; keep the first
    // and last k when that would be a large table).
    let count = vectors.size()[0];
    let keep: Vec<i64> = if count > 16 {
        (0..4).chain(count - 4..count).collect()
    } else {
        (0..count).collect()
    };
    let mut images = vec![image_row("target_image", 0, None, &image, false)];
    images.extend(keep.iter().map(|&j| {
        let mut row = image_row(
            "eigendistortion",
            index[j as usize],
            None,
            &vectors.get(j),
            true,
        );
        row.index = index[j as usize];
        row
    }));
    let power = e.iterations();
    let iterations = power.map(|it| (it.top + it.bottom) as i64).unwrap_or(0);
    Ok(Records {
        iterations,
        power_iterations_top: power.map(|it| it.top as i64),
        power_iterations_bottom: power.map(|it| it.bottom as i64),
        eigen,
        images,
        ..Default::default()
    })
}

fn geodesic(worker: &mut Worker, task: &Task, cancel: &AtomicBool) -> Result<Records> {
    let (a, b) = the_pair(worker, task)?;
    let key = worker.ensure_model(required(&task.model, "model")?)?;
    let model = worker.model(&key);
    model.check_input(&a.size())?;
    let p: &GeodesicParams = params_of(task, |p| match p {
        MethodParams::Geodesic(p) => Some(p),
        _ => None,
    })?;
    let mut opts = p.options.clone();
    opts.seed = Some(seed(task));
    let run = p.synthesize.clone();
    let build = || Ok(Geodesic::new(&a, &b, model, opts.clone())?);
    let mut g = build()?;
    // The initial sequence (straight or bridge; seeded, so a resumed task's fresh build
    // gives the same one): (n_steps + 1, C, H, W), written as `initial_image` frames.
    let initial = g.geodesic();
    let done = resume(
        worker,
        task,
        &mut g,
        build,
        |g, p| g.load(p),
        |g| g.losses().len(),
    )?;
    if let Some(rest) = remaining_geodesic(run, &g, done) {
        let r = g.synthesize_with(&rest, &mut |_: &Progress| go_on(cancel));
        checkpoint_on_preemption(worker, task, r, |p| g.save(p))?;
    }
    let frames = g.geodesic();
    let n = g.losses().len() as i64;
    let final_loss = scalar(&g.objective_function(None));
    // Needs gradients (a vector-Jacobian product): not under no_grad.
    let jerkiness = vector(&g.calculate_jerkiness(None)?)?;
    Ok(Records {
        iterations: n,
        final_loss: Some(final_loss),
        jerkiness: Some(jerkiness.iter().sum()),
        jerkiness_frames: Some(jerkiness),
        losses: geodesic_loss_rows(&g)?,
        images: stack_rows("initial_image", &initial, |_| None, false)
            .into_iter()
            .chain(stack_rows("geodesic_frame", &frames, |_| None, false))
            .collect(),
        ..Default::default()
    })
}

/// A tensor's values, flattened, as f64.
fn vector(t: &Tensor) -> Result<Vec<f64>> {
    Vec::try_from(
        t.detach()
            .to_device(tch::Device::Cpu)
            .to_kind(tch::Kind::Double)
            .reshape([-1]),
    )
    .map_err(|e: tch::TchError| TaskError::Failed(e.to_string()))
}

/// Loss rows of a geodesic: the standard series, plus plenoptic's `step_energy` and
/// `dev_from_line` records on the rows of the iterations they were taken at (record k at
/// iteration k · store_progress, as the synthesis takes them).
fn geodesic_loss_rows(g: &Geodesic<'_>) -> Result<Vec<LossRow>> {
    let mut rows = loss_rows(g.losses(), g.gradient_norm(), g.pixel_change_norm());
    let every = g.store_progress().unwrap_or(0);
    if every == 0 {
        return Ok(rows);
    }
    let (energy, deviation) = (g.step_energy(), g.dev_from_line());
    for k in 0..energy.size()[0] {
        let iteration = k as usize * every;
        let row = rows.get_mut(iteration).ok_or_else(|| {
            TaskError::Failed(format!(
                "internal: geodesic record {k} (iteration {iteration}) has no loss row; {} iterations ran",
                g.losses().len()
            ))
        })?;
        let dev = deviation.get(k);
        row.step_energy = Some(vector(&energy.get(k))?);
        row.dist_along_line = Some(vector(&dev.select(1, 0))?);
        row.dist_from_line = Some(vector(&dev.select(1, 1))?);
    }
    Ok(rows)
}

/// As [`remaining`], with Geodesic's stop rule (pixel change, over the whole run).
fn remaining_geodesic(
    mut run: GeodesicSynthesizeOptions,
    g: &Geodesic,
    done: usize,
) -> Option<GeodesicSynthesizeOptions> {
    if done == 0 {
        return Some(run);
    }
    run.max_iter = run.max_iter.saturating_sub(done);
    let criterion = run
        .stop_criterion
        .unwrap_or_else(|| g.default_stop_criterion());
    let converged =
        pixel_change_converged(g.pixel_change_norm(), criterion, run.stop_iters_to_check);
    (run.max_iter > 0 && !converged).then_some(run)
}

fn score(worker: &mut Worker, task: &Task) -> Result<Records> {
    let (a, b) = the_pair(worker, task)?;
    let spec = required(&task.metric, "metric")?;
    let key = worker.ensure_metric(spec)?;
    let metric = worker.metric(&key);
    if a.size() != b.size() {
        return Err(TaskError::Failed(format!(
            "images differ in shape: {:?} vs {:?}",
            a.size(),
            b.size()
        )));
    }
    metric.check_input(&a.size())?;
    // One value per image pair: the mean over channels of the metric's (1, C) output.
    let value = tch::no_grad(|| scalar(&metric.forward(&a, &b)));
    let TaskImages::Pair(ia, ib) = &task.images else {
        unreachable!("checked by the_pair")
    };
    Ok(Records {
        scores: vec![ScoreRow {
            task_id: String::new(),
            image_a: ia.display.clone(),
            image_b: ib.display.clone(),
            metric: spec.to_string(),
            value,
        }],
        ..Default::default()
    })
}

/// Whether `task` may share a synthesis with others: a metamer or MAD competition with Adam
/// or SGD and no scheduler, whose model and metrics are built in (a user's TorchScript
/// model may couple the elements of a batch).
fn batchable(task: &Task) -> bool {
    let run = match &*task.params {
        MethodParams::Metamer(p) => &p.synthesize,
        MethodParams::Mad(p) => &p.synthesize,
        _ => return false,
    };
    let user_model = [
        &task.model,
        &task.metric,
        &task.optimized_metric,
        &task.reference_metric,
    ]
    .iter()
    .any(|s| {
        s.as_ref()
            .is_some_and(|v| v.to_string().contains("\"torchscript\""))
    });
    matches!(
        run.optimizer,
        None | Some(OptimizerConfig::Adam(_)) | Some(OptimizerConfig::Sgd(_))
    ) && run.scheduler.is_none()
        && !user_model
}

/// Whether `a` and `b` share a batch key: the synthesis kind, the model and metric specs,
/// the image loading and every parameter but the images and the seed (MAD's `minmax` may
/// differ), and both are [batchable](self). Tasks that do run as one synthesis per image
/// shape (see [`run_batch`]).
pub fn batch_compatible(a: &Task, b: &Task) -> bool {
    batchable(a)
        && batchable(b)
        && a.synth == b.synth
        && a.model == b.model
        && a.metric == b.metric
        && a.optimized_metric == b.optimized_metric
        && a.reference_metric == b.reference_metric
        && a.as_gray == b.as_gray
        && a.params == b.params
}

/// Runs `tasks` (pairwise [`batch_compatible`]) on `worker`: those whose images share a
/// shape as one synthesis over a (B, C, H, W) tensor (`synthsweep_synth::batch`), each with
/// its own image, seed, records, stop rule and result. A task with a checkpoint, or alone
/// with its image shape, runs as [`run`] runs it; so does a group whose model or metrics
/// cannot be set up (each task then fails with its own message). On a preemption each
/// element of a batch is checkpointed as its own task (its state at the iteration it
/// stopped), and resumes alone. Returns one result per task, in order.
pub fn run_batch(
    worker: &mut Worker,
    tasks: &[&Task],
    cancel: &AtomicBool,
) -> Vec<Result<Records>> {
    let mut out: Vec<Option<Result<Records>>> = tasks.iter().map(|_| None).collect();
    let mut groups: Vec<(Vec<i64>, Group)> = Vec::new();
    // Once a stop is requested, tasks not started yet are left unstarted (as the engine
    // leaves them between requests), not built and checkpointed after a chunk.
    let stopping = || cancel.load(Ordering::Relaxed);
    for (k, t) in tasks.iter().enumerate() {
        let resumes = worker
            .checkpoints()
            .is_some_and(|ck| ck.find(t.id()).is_some());
        if resumes {
            out[k] = Some(if stopping() {
                Err(TaskError::Cancelled)
            } else {
                run(worker, t, cancel)
            });
            continue;
        }
        match the_image(worker, t) {
            Ok(img) => {
                let shape = img.size();
                match groups.iter_mut().find(|(s, _)| *s == shape) {
                    Some((_, g)) => g.push((k, img)),
                    None => groups.push((shape, vec![(k, img)])),
                }
            }
            Err(e) => out[k] = Some(Err(e)),
        }
    }
    for (shape, group) in groups {
        if stopping() {
            for (k, _) in group {
                out[k] = Some(Err(TaskError::Cancelled));
            }
            continue;
        }
        if group.len() > 1 {
            tracing::debug!(
                "{} {} tasks as one synthesis over {shape:?} images",
                group.len(),
                tasks[group[0].0].synth
            );
        }
        let done = if group.len() < 2 {
            None
        } else {
            match tasks[group[0].0].synth {
                SynthKind::Metamer => metamer_batch(worker, tasks, &group, cancel),
                SynthKind::Mad => mad_batch(worker, tasks, &group, cancel),
                _ => None,
            }
        };
        match done {
            Some(results) => {
                for (k, r) in results {
                    out[k] = Some(r);
                }
            }
            None => {
                for (k, _) in group {
                    out[k] = Some(if stopping() {
                        Err(TaskError::Cancelled)
                    } else {
                        run(worker, tasks[k], cancel)
                    });
                }
            }
        }
    }
    out.into_iter()
        .map(|o| o.expect("every task of the batch has a result"))
        .collect()
}

/// Tasks of one batch: (position in the request, loaded image).
type Group = Vec<(usize, Tensor)>;

/// An element's outcome: checkpointed as its own task on a preemption, else its records.
fn element_result<S>(
    worker: &Worker,
    task: &Task,
    outcome: synthsweep_synth::Result<synthsweep_synth::Outcome>,
    synthesis: &S,
    save: impl FnOnce(&S, &Path) -> synthsweep_synth::Result<()>,
    records: impl FnOnce(&S) -> Records,
) -> Result<Records> {
    checkpoint_on_preemption(worker, task, outcome, |p| save(synthesis, p))?;
    Ok(records(synthesis))
}

/// The batch of metamers of `group` ((task position, image), ≥ 2 of one shape); `None` when
/// the model cannot be set up for it (the caller runs the tasks one by one).
fn metamer_batch(
    worker: &mut Worker,
    tasks: &[&Task],
    group: &[(usize, Tensor)],
    cancel: &AtomicBool,
) -> Option<Vec<(usize, Result<Records>)>> {
    let first = tasks[group[0].0];
    let key = worker
        .ensure_model(required(&first.model, "model").ok()?)
        .ok()?;
    let model = worker.model(&key);
    model.check_input(&group[0].1.size()).ok()?;
    let MethodParams::Metamer(p) = &*first.params else {
        return None;
    };
    let run = &p.synthesize;
    let mut results = Vec::new();
    let mut members = Vec::new();
    let mut metamers = Vec::new();
    for (k, image) in group {
        let mut opts = p.options.clone();
        opts.seed = Some(seed(tasks[*k]));
        match Metamer::new(image, model, opts) {
            Ok(m) => {
                members.push((*k, image, m.metamer().detach().copy()));
                metamers.push(m);
            }
            Err(e) => results.push((*k, Err(e.into()))),
        }
    }
    let outcomes = batch_outcomes(synthsweep_synth::synthesize_metamers(
        &mut metamers,
        run,
        Some(&mut |_: usize, _: &Progress| go_on(cancel)),
    ))?;
    for (((k, image, initial), m), outcome) in members.into_iter().zip(&metamers).zip(outcomes) {
        let r = element_result(
            worker,
            tasks[k],
            outcome,
            m,
            |m, p| m.save(p),
            |m| metamer_records(image, &initial, m, run),
        );
        results.push((k, r));
    }
    Some(results)
}

/// The batch of MAD competitions of `group`, as [`metamer_batch`].
fn mad_batch(
    worker: &mut Worker,
    tasks: &[&Task],
    group: &[(usize, Tensor)],
    cancel: &AtomicBool,
) -> Option<Vec<(usize, Result<Records>)>> {
    let first = tasks[group[0].0];
    let k1 = worker
        .ensure_metric(required(&first.optimized_metric, "optimized_metric").ok()?)
        .ok()?;
    let k2 = worker
        .ensure_metric(required(&first.reference_metric, "reference_metric").ok()?)
        .ok()?;
    let (m1, m2) = (worker.metric(&k1), worker.metric(&k2));
    let shape = group[0].1.size();
    m1.check_input(&shape).ok()?;
    m2.check_input(&shape).ok()?;
    let MethodParams::Mad(p) = &*first.params else {
        return None;
    };
    let run = &p.synthesize;
    let mut results = Vec::new();
    let mut members = Vec::new();
    let mut mads = Vec::new();
    for (k, image) in group {
        let task = tasks[*k];
        let Some(minmax) = task.minmax else {
            results.push((*k, Err(TaskError::Failed("MAD needs minmax".into()))));
            continue;
        };
        let mut opts = p.options.clone();
        opts.seed = Some(seed(task));
        match MadCompetition::new(image, m1, m2, minmax, opts) {
            Ok(m) => {
                members.push((*k, image));
                mads.push(m);
            }
            Err(e) => results.push((*k, Err(e.into()))),
        }
    }
    let outcomes = batch_outcomes(synthsweep_synth::synthesize_mads(
        &mut mads,
        run,
        Some(&mut |_: usize, _: &Progress| go_on(cancel)),
    ))?;
    for (((k, image), m), outcome) in members.into_iter().zip(&mads).zip(outcomes) {
        let r = element_result(
            worker,
            tasks[k],
            outcome,
            m,
            |m, p| m.save(p),
            |m| mad_records(image, m),
        );
        results.push((k, r));
    }
    Some(results)
}

/// The elements' outcomes; `None` when the batch stopped with an error of its own (refused
/// before it ran, which it should not be, or a failure mid-run such as running out of
/// device memory). Its elements' state is then half-updated (elements still running have
/// records of chunks their images do not reflect), so the caller runs each task again
/// from its start, alone, as [`run`] does.
fn batch_outcomes(
    batched: synthsweep_synth::Result<Vec<synthsweep_synth::Result<synthsweep_synth::Outcome>>>,
) -> Option<Vec<synthsweep_synth::Result<synthsweep_synth::Outcome>>> {
    match batched {
        Ok(o) => Some(o),
        Err(e) => {
            tracing::warn!(
                "batch stopped ({e}): running its tasks again one at a time, from the start"
            );
            None
        }
    }
}
