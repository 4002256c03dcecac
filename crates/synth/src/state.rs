//! Saving a synthesis in progress and resuming it. One safetensors file holds the tensors
//! (image being synthesized, series, snapshots, optimizer state) and, in its header, JSON
//! metadata: method, parameters, a digest of the image, the model/metric names and identity.
//! Loading into a freshly built synthesis refuses a file made for a different image,
//! model/metric or parameters, and says what differs; resuming then continues bit for bit.
use crate::error::{Result, SynthError};
use crate::optim::{Optimizer, OptimizerConfig, OptimizerState};
use crate::scheduler::{Scheduler, SchedulerConfig};
use crate::synthesis::Core;
use safetensors::tensor::{Dtype, SafeTensors, View};
use serde::Serialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use tch::{Device, Kind, Tensor};

const FORMAT: &str = "synthsweep-synthesis-state";
const VERSION: u64 = 1;
const META_KEY: &str = "synthsweep";

/// The bytes of a CPU copy of a tensor, in safetensors' terms.
struct Bytes {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl Bytes {
    fn of(t: &Tensor) -> Result<Self> {
        let t = t.detach().to_device(Device::Cpu).contiguous();
        let dtype = Dtype::try_from(t.kind())?;
        let mut data = vec![0u8; t.numel() * t.kind().elt_size_in_bytes()];
        t.f_copy_data_u8(&mut data, t.numel())?;
        Ok(Bytes {
            dtype,
            shape: t.size().iter().map(|&s| s as usize).collect(),
            data,
        })
    }
}

impl View for &Bytes {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// SHA-256 of a tensor's kind, shape and bytes (of its CPU copy).
pub fn digest(t: &Tensor) -> Result<String> {
    let b = Bytes::of(t)?;
    let mut h = Sha256::new();
    h.update(format!("{:?}{:?}", t.kind(), b.shape).as_bytes());
    h.update(&b.data);
    Ok(h.finalize().iter().map(|x| format!("{x:02x}")).collect())
}

/// What identifies an input image: shape, kind and digest.
pub(crate) fn image_record(t: &Tensor) -> Result<Value> {
    Ok(json!({"shape": t.size(), "dtype": format!("{:?}", t.kind()), "sha256": digest(t)?}))
}

/// A parameters struct as JSON, without `seed`: the seed only decides the starting point,
/// which loading replaces.
pub(crate) fn parameters<T: Serialize>(v: &T) -> Value {
    let mut p = to_value(v);
    if let Value::Object(m) = &mut p {
        m.remove("seed");
    }
    p
}

pub(crate) fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("options serialize to JSON")
}

/// Collects metadata and tensors, then writes them as one file.
pub(crate) struct StateWriter {
    meta: Map<String, Value>,
    tensors: Vec<(String, Tensor)>,
}

impl StateWriter {
    pub fn new(method: &str) -> Self {
        let mut meta = Map::new();
        meta.insert("format".into(), json!(FORMAT));
        meta.insert("version".into(), json!(VERSION));
        meta.insert("method".into(), json!(method));
        StateWriter {
            meta,
            tensors: Vec::new(),
        }
    }

    pub fn meta<T: Serialize>(&mut self, key: &str, value: &T) {
        self.meta.insert(key.to_string(), to_value(value));
    }

    pub fn tensor(&mut self, name: &str, t: &Tensor) {
        self.tensors.push((name.to_string(), t.detach()));
    }

    pub fn series(&mut self, name: &str, v: &[f64]) {
        if !v.is_empty() {
            self.tensor(name, &Tensor::from_slice(v));
        }
    }

    /// Same-shaped tensors (records of a series), stacked; nothing when there are none.
    pub fn stacked(&mut self, name: &str, items: &[Tensor]) {
        if !items.is_empty() {
            self.tensor(name, &Tensor::stack(items, 0));
        }
    }

    /// Scalars as 0-dim f64 tensors (exact, and infinities survive, unlike in JSON).
    pub fn scalars(&mut self, prefix: &str, s: &BTreeMap<String, f64>) {
        for (k, v) in s {
            self.tensor(&format!("{prefix}/{k}"), &Tensor::from(*v));
        }
    }

    pub fn write(self, path: &Path) -> Result<()> {
        let bytes = self
            .tensors
            .iter()
            .map(|(n, t)| Ok((n.clone(), Bytes::of(t)?)))
            .collect::<Result<Vec<_>>>()?;
        let header = HashMap::from([(META_KEY.to_string(), Value::Object(self.meta).to_string())]);
        safetensors::tensor::serialize_to_file(
            bytes.iter().map(|(n, b)| (n.as_str(), b)),
            &Some(header),
            path,
        )
        .map_err(|e| state_err(path, format!("cannot write: {e}")))
    }
}

fn state_err(path: &Path, msg: impl Into<String>) -> SynthError {
    SynthError::State {
        path: path.display().to_string(),
        msg: msg.into(),
    }
}

/// A state file read back.
pub(crate) struct StateFile {
    pub path: String,
    pub meta: Map<String, Value>,
    tensors: HashMap<String, Tensor>,
}

impl StateFile {
    /// Reads a file and checks it is a synthesis state of `method`.
    pub fn read(path: &Path, method: &str) -> Result<Self> {
        let buf = std::fs::read(path).map_err(|e| state_err(path, format!("cannot read: {e}")))?;
        let bad = |msg: String| state_err(path, msg);
        let (_, header) = SafeTensors::read_metadata(&buf)
            .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        let text = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get(META_KEY))
            .ok_or_else(|| bad("not a synthsweep synthesis state (no metadata)".into()))?;
        let meta: Map<String, Value> =
            serde_json::from_str(text).map_err(|e| bad(format!("unreadable metadata: {e}")))?;
        if meta.get("format") != Some(&json!(FORMAT))
            || meta.get("version") != Some(&json!(VERSION))
        {
            return Err(bad(format!("not a {FORMAT} version {VERSION} file")));
        }
        let saved_method = meta.get("method").and_then(Value::as_str).unwrap_or("?");
        if saved_method != method {
            return Err(bad(format!(
                "was saved by {saved_method}, cannot be loaded into {method}"
            )));
        }
        let st =
            SafeTensors::deserialize(&buf).map_err(|e| bad(format!("unreadable tensors: {e}")))?;
        let tensors = st
            .tensors()
            .into_iter()
            .map(|(n, v)| Ok((n, Tensor::try_from(v)?)))
            .collect::<Result<HashMap<_, _>>>()?;
        Ok(StateFile {
            path: path.display().to_string(),
            meta,
            tensors,
        })
    }

    pub fn err(&self, msg: impl Into<String>) -> SynthError {
        SynthError::State {
            path: self.path.clone(),
            msg: msg.into(),
        }
    }

    pub fn get(&self, key: &str) -> &Value {
        self.meta.get(key).unwrap_or(&Value::Null)
    }

    pub fn parse<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<T> {
        serde_json::from_value(self.get(key).clone())
            .map_err(|e| self.err(format!("metadata `{key}`: {e}")))
    }

    pub fn tensor(&self, name: &str) -> Result<&Tensor> {
        self.tensors
            .get(name)
            .ok_or_else(|| self.err(format!("lacks tensor `{name}`")))
    }

    /// A tensor the file may lack (an optional result, a cache).
    pub fn maybe_tensor(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }

    /// What [`StateWriter::stacked`] wrote, unstacked (none when absent).
    pub fn unstacked(&self, name: &str) -> Vec<Tensor> {
        self.tensors
            .get(name)
            .map_or_else(Vec::new, |t| t.unbind(0))
    }

    pub fn series(&self, name: &str) -> Result<Vec<f64>> {
        match self.tensors.get(name) {
            Some(t) => Ok(Vec::<f64>::try_from(t.to_kind(Kind::Double))?),
            None => Ok(Vec::new()),
        }
    }

    fn with_prefix(&self, prefix: &str) -> impl Iterator<Item = (&str, &Tensor)> {
        let p = format!("{prefix}/");
        self.tensors
            .iter()
            .filter_map(move |(k, t)| k.strip_prefix(&p).map(|rest| (rest, t)))
    }

    pub fn scalars(&self, prefix: &str) -> BTreeMap<String, f64> {
        self.with_prefix(prefix)
            .map(|(k, t)| (k.to_string(), t.double_value(&[])))
            .collect()
    }
}

/// The differences between a saved synthesis and this one, reported together.
#[derive(Default)]
pub(crate) struct Mismatches(Vec<String>);

impl Mismatches {
    pub fn check(&mut self, what: &str, saved: &Value, now: &Value) {
        match (saved, now) {
            (Value::Object(s), Value::Object(n)) => {
                let keys: std::collections::BTreeSet<&String> = s.keys().chain(n.keys()).collect();
                for k in keys {
                    let (a, b) = (
                        s.get(k).unwrap_or(&Value::Null),
                        n.get(k).unwrap_or(&Value::Null),
                    );
                    if a != b {
                        self.0.push(format!("{what}.{k}: saved {a}, now {b}"));
                    }
                }
            }
            _ if saved != now => self.0.push(format!("{what}: saved {saved}, now {now}")),
            _ => {}
        }
    }

    /// `|saved − now| ≤ 1e-6 + 1e-5·|saved|` elementwise, shapes equal.
    pub fn check_close(&mut self, what: &str, saved: &Tensor, now: &Tensor) {
        let now = now.detach().to_device(Device::Cpu).to_kind(Kind::Double);
        let saved = saved.to_kind(Kind::Double);
        if saved.size() != now.size() {
            self.0.push(format!(
                "{what}: saved shape {:?}, now {:?}",
                saved.size(),
                now.size()
            ));
        } else if !now.allclose(&saved, 1e-5, 1e-6, false) {
            let d = (&now - &saved).abs().max().double_value(&[]);
            self.0.push(format!("{what}: differs by up to {d:e}"));
        }
    }

    pub fn push(&mut self, msg: String) {
        self.0.push(msg);
    }

    pub fn into_result(self, file: &StateFile) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(file.err(format!(
                "belongs to a different synthesis: {}",
                self.0.join("; ")
            )))
        }
    }
}

/// Writes what every optimised synthesis shares.
pub(crate) fn save_core(core: &Core, w: &mut StateWriter) {
    w.meta("iterations", &core.losses.len());
    w.meta("store_progress", &core.store_progress);
    w.meta(
        "scheduler",
        &core.scheduler.as_ref().map(|s| s.config().clone()),
    );
    w.tensor("x", &core.x);
    w.series("losses", &core.losses);
    w.series("gradient_norm", &core.gradient_norm);
    w.series("pixel_change_norm", &core.pixel_change_norm);
    if !core.saved.is_empty() {
        w.tensor("saved", &core.saved_stack());
    }
    save_optimizer(core.optimizer.as_ref(), w);
    if let Some(s) = &core.scheduler {
        w.scalars("scheduler.scalar", &s.export_state());
    }
}

/// Restores what [`save_core`] wrote; the image goes to `device` as `kind`.
pub(crate) fn load_core(core: &mut Core, f: &StateFile, device: Device, kind: Kind) -> Result<()> {
    let x = f.tensor("x")?.to_device(device).to_kind(kind);
    if x.size() != core.x.size() {
        return Err(f.err(format!(
            "saved image has shape {:?}, this synthesis {:?}",
            x.size(),
            core.x.size()
        )));
    }
    let mut restored = Core::new(&x);
    restored.default_optimizer = core.default_optimizer.clone();
    restored.store_progress = f.parse("store_progress")?;
    restored.losses = f.series("losses")?;
    restored.gradient_norm = f.series("gradient_norm")?;
    restored.pixel_change_norm = f.series("pixel_change_norm")?;
    if let Ok(s) = f.tensor("saved") {
        restored.saved = s.to_kind(kind).unbind(0);
    }
    restored.optimizer = load_optimizer(f, &restored.x)?;
    if let Some(cfg) = f.parse::<Option<SchedulerConfig>>("scheduler")? {
        let mut s = Scheduler::new(&cfg)?;
        s.import_state(&f.scalars("scheduler.scalar"))
            .map_err(|e| f.err(e.to_string()))?;
        restored.scheduler = Some(s);
    }
    *core = restored;
    Ok(())
}

/// Writes an optimizer's configuration (metadata `optimizer`, `null` when there is none yet)
/// and its state (moments, history, learning rates).
pub(crate) fn save_optimizer(optimizer: Option<&Optimizer>, w: &mut StateWriter) {
    w.meta("optimizer", &optimizer.map(|o| o.config().clone()));
    if let Some(o) = optimizer {
        let st = o.export_state();
        w.scalars("optimizer.scalar", &st.scalars);
        for (k, t) in &st.tensors {
            w.tensor(&format!("optimizer/{k}"), t);
        }
    }
}

/// Rebuilds the optimizer [`save_optimizer`] wrote, bound to `param` (already on its device
/// and kind, requiring grad), with its state restored.
pub(crate) fn load_optimizer(f: &StateFile, param: &Tensor) -> Result<Option<Optimizer>> {
    let Some(cfg) = f.parse::<Option<OptimizerConfig>>("optimizer")? else {
        return Ok(None);
    };
    let mut o = Optimizer::new(&cfg, param)?;
    let st = OptimizerState {
        scalars: f.scalars("optimizer.scalar"),
        tensors: f
            .with_prefix("optimizer")
            .map(|(k, t)| (k.to_string(), t.shallow_clone()))
            .collect(),
    };
    o.import_state(&st).map_err(|e| f.err(e.to_string()))?;
    Ok(Some(o))
}

/// What identifies a model: its registry name and the caller's identity (e.g. its spec).
pub(crate) fn model_record(
    model: &dyn synthsweep_models::Model,
    identity: &Option<String>,
) -> Value {
    json!({"name": model.name(), "identity": identity})
}
