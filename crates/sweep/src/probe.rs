//! Checking a plan without walking it: one task is built for every value of every axis and
//! for every `[[when]]` rule, each in the first task (in index order) that has it and is not
//! excluded. That sends every value through the resolver and the parameter checks once,
//! blames the value they reject, and finds two grid positions that describe the same task.
//! (`check` then visits every task.)
use crate::error::{Location, SweepError};
use crate::plan::Plan;
use std::collections::HashMap;
use synthsweep_core::Role;

/// What a search for a task with given rows found.
enum Found {
    Task(Vec<usize>),
    /// No task has them (or every task that has them is excluded).
    Nothing,
    /// The search stopped early: too many excluded combinations to try while planning.
    GaveUp,
}

const SEARCH_LIMIT: usize = 1_000_000;

impl Plan {
    /// The first task (in index order) whose rows all pass `allow` (and hold `only`). Costs
    /// the scan to each group's first allowed row, nothing per row of a held group (so
    /// probing every row of a long axis stays linear), then steps only through the excluding
    /// groups.
    /// `only`: one group held at one row (the row being probed), found without a scan.
    fn first_kept(
        &self,
        allow: &dyn Fn(usize, usize) -> bool,
        only: Option<(usize, usize)>,
    ) -> Found {
        let n = self.radix.len();
        // The first allowed row of group `g` at or after `from`.
        let next = |g: usize, from: usize| match only {
            Some((h, r)) if h == g => (from <= r).then_some(r),
            _ => (from..self.radix[g] as usize).find(|&r| allow(g, r)),
        };
        let mut rows = Vec::with_capacity(n);
        for g in 0..n {
            match next(g, 0) {
                Some(r) => rows.push(r),
                None => return Found::Nothing,
            }
        }
        let first = rows.clone();
        let m = self.excluding_groups();
        for _ in 0..SEARCH_LIMIT {
            if self.excluded_by(&rows).is_none() {
                return Found::Task(rows);
            }
            // Only the excluding groups decide exclusion: step through their allowed rows.
            let mut k = m.len();
            loop {
                if k == 0 {
                    return Found::Nothing;
                }
                k -= 1;
                let g = m[k];
                match next(g, rows[g] + 1) {
                    Some(r) => {
                        rows[g] = r;
                        break;
                    }
                    None => rows[g] = first[g],
                }
            }
        }
        Found::GaveUp
    }

    /// Builds one task in each context that shows a new value: every row of every axis and
    /// every `[[when]]`, each in the first task that has it. This checks every value through
    /// the resolver (and fills the caches) without visiting the whole grid, and catches two
    /// grid positions that describe the same task.
    pub(crate) fn probe(&self) -> Result<(), SweepError> {
        let mut seen: HashMap<String, Vec<usize>> = HashMap::new();
        let mut check = |rows: Vec<usize>, blame: &Location| -> Result<(), SweepError> {
            let task = match self.build(self.index_of(&rows), &rows) {
                Ok(t) => t,
                Err(fail) => {
                    let at = fail.at.unwrap_or_else(|| blame.clone());
                    return Err(SweepError::Spec {
                        at,
                        message: fail.message,
                    });
                }
            };
            if let Some(other) = seen.get(task.id()) {
                if *other != rows {
                    return Err(SweepError::Spec {
                        at: blame.clone(),
                        message: format!(
                            "two grid positions describe the same task after resolution ({} and \
                             {}); the tasks would repeat",
                            self.coords_text(other),
                            self.coords_text(&rows)
                        ),
                    });
                }
            }
            seen.insert(task.id, rows);
            Ok(())
        };
        let whole = Location {
            file: self.spec.src.file.clone(),
            key: "params".into(),
            line: None,
        };
        if self.spec.groups.is_empty() {
            return check(Vec::new(), &whole);
        }
        for (g, group) in self.spec.groups.iter().enumerate() {
            // A seed was checked when it was read (a non-negative integer, distinct within its
            // axis), reaches no resolver, and two tasks with different seeds are different
            // tasks: one task shows what a seed axis can show, however long it is (so a long
            // `repeats` plans in the time of a grid of the same size).
            let seeds_only = group.columns.iter().all(|c| c == Role::Seed.as_str());
            let shown = if seeds_only { 1 } else { group.len() };
            for (r, row) in group.rows.iter().enumerate().take(shown) {
                // A value that only excluded combinations have is never run: nothing to check.
                if let Found::Task(rows) = self.first_kept(&|_, _| true, Some((g, r))) {
                    check(rows, &row[0].at)?;
                }
            }
        }
        for w in &self.spec.whens {
            let allow = |h: usize, s: usize| {
                w.conds
                    .iter()
                    .filter(|c| c.group == h)
                    .all(|c| c.matches[s])
            };
            match self.first_kept(&allow, None) {
                Found::Task(rows) => check(rows, &w.set[0].1.at)?,
                Found::GaveUp => {}
                Found::Nothing => {
                    let mut at = w.set[0].1.at.clone();
                    at.key = w.label.clone();
                    return Err(SweepError::Spec {
                        at,
                        message: format!(
                            "applies to no task: no task has {} (or every such task is excluded)",
                            w.desc
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}
