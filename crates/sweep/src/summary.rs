//! What a plan will do, in numbers and one screen of text: task count, axis sizes, what
//! each exclusion drops, what each `[[when]]` sets, the fixed parameters.
use crate::canonical::canonical_json;
use crate::plan::Plan;
use crate::spec::AxisInfo;
use serde_json::Value;
use std::fmt;
use synthsweep_core::SynthKind;

/// What one `[[exclude]]` dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclusion {
    /// `exclude[0]`.
    pub rule: String,
    /// `same(optimized_metric, reference_metric)`, `minmax = "max", seed = 0`.
    pub description: String,
    /// Grid positions it drops (a position two rules drop counts for the first).
    pub count: u64,
}

/// A plan in numbers. `Display` prints it for `synthsweep plan`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanSummary {
    pub name: String,
    pub synth: SynthKind,
    /// Tasks after exclusions.
    pub tasks: u64,
    /// Product of the axis sizes.
    pub grid_size: u64,
    pub axes: Vec<AxisInfo>,
    pub excluded: Vec<Exclusion>,
    /// `when[0]: model = "on_off" sets kernel_size`.
    pub conditional: Vec<String>,
    /// `[params]` as written.
    pub fixed: Vec<(String, Value)>,
    /// Distinct images.
    pub images: usize,
}

impl Plan {
    /// The plan's numbers; cheap (everything was counted while planning).
    pub fn summary(&self) -> PlanSummary {
        let spec = &self.spec;
        PlanSummary {
            name: spec.name.clone(),
            synth: spec.synth,
            tasks: self.len,
            grid_size: self.grid_size,
            axes: spec.axes(),
            excluded: spec
                .excludes
                .iter()
                .zip(&self.excluded)
                .map(|(e, &count)| Exclusion {
                    rule: e.label.clone(),
                    description: e.desc.clone(),
                    count,
                })
                .collect(),
            conditional: spec
                .whens
                .iter()
                .map(|w| {
                    let names: Vec<&str> = w.set.iter().map(|(n, _)| n.as_str()).collect();
                    format!("{}: {} sets {}", w.label, w.desc, names.join(", "))
                })
                .collect(),
            fixed: spec.fixed_params(),
            images: self.images.len(),
        }
    }
}

impl fmt::Display for PlanSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} ({}): {} task{}, {} image{}",
            self.name,
            self.synth,
            self.tasks,
            if self.tasks == 1 { "" } else { "s" },
            self.images,
            if self.images == 1 { "" } else { "s" }
        )?;
        if !self.axes.is_empty() {
            let axes: Vec<String> = self
                .axes
                .iter()
                .map(|a| format!("{} {}", a.columns.join("+"), a.len))
                .collect();
            writeln!(f, "  grid: {} = {}", axes.join(" x "), self.grid_size)?;
        }
        for e in &self.excluded {
            writeln!(
                f,
                "  excluded {} by {} ({})",
                e.count, e.description, e.rule
            )?;
        }
        for c in &self.conditional {
            writeln!(f, "  {c}")?;
        }
        if !self.fixed.is_empty() {
            let fixed: Vec<String> = self
                .fixed
                .iter()
                .map(|(k, v)| format!("{k} = {}", canonical_json(v)))
                .collect();
            writeln!(f, "  fixed: {}", fixed.join(", "))?;
        }
        Ok(())
    }
}
