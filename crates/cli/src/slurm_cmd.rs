//! `synthsweep slurm`: renders an sbatch script for a sweep and submits it. Two shapes:
//! one job whose `srun` starts a synthsweep process per node (the processes share the
//! sweep through the output root), or a job array whose element i runs shard i/K. Both are
//! requeueable: Slurm sends SIGUSR1 to the processes `--signal-before` seconds before the
//! time limit, they checkpoint and exit 75, and the script requeues the job, which resumes.
//! It requeues on a storage failure (74) too, up to 10 restarts.
//! `scripts/slurm/{multinode,array}.sbatch` are the same scripts, commented for editing.
use crate::args::SlurmArgs;
use crate::output::{out, outln};
use crate::EXIT_STORAGE;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use synthsweep_exec::{TaskResolver, EXIT_PREEMPTED};

/// A job whose run failed on the storage (exit 74) is requeued while it has been restarted
/// fewer times than this (all causes counted): an outage passes, a root that is wrong for
/// good (bad credentials) does not requeue forever.
const STORAGE_REQUEUES: u32 = 10;
use synthsweep_store::OutputRoot;
use synthsweep_sweep::SweepSpec;

/// Slurm's default MaxArraySize, used when `scontrol` cannot tell (dry runs off-cluster).
const SLURM_DEFAULT_MAX_ARRAY_SIZE: u64 = 1001;
/// The default array size never exceeds this: more elements than that mostly add
/// scheduling and model-building overhead.
const DEFAULT_ARRAY_CAP: u64 = 1000;
/// Seconds before the time limit at which the processes are told to checkpoint.
const DEFAULT_SIGNAL_BEFORE: u64 = 120;

/// A validated `synthsweep slurm` request.
#[derive(Debug, Clone, PartialEq)]
pub struct SlurmPlan {
    pub name: String,
    pub spec: PathBuf,
    /// The output root as the job passes it to `--out` (local paths made absolute).
    pub root: String,
    pub local_root: Option<PathBuf>,
    pub binary: PathBuf,
    pub nodes: u32,
    pub tasks_per_node: u32,
    pub gpus_per_node: u32,
    pub cpus_per_task: Option<u32>,
    pub time_s: u64,
    pub signal_before_s: u64,
    pub partition: Option<String>,
    pub account: Option<String>,
    /// Job array of this many elements (shards), or one job.
    pub array: Option<u64>,
    /// Where the script and the job's log go.
    pub script_dir: PathBuf,
    pub run_args: Vec<String>,
    pub dry_run: bool,
    /// What the user should know about how the array was sized.
    pub notes: Vec<String>,
}

/// Parses a Slurm time limit: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S`; seconds.
pub fn parse_time(s: &str) -> Result<u64, String> {
    let bad = |why: &str| {
        format!("--time {s:?}: {why} (Slurm formats: minutes, M:S, H:M:S, D-H, D-H:M, D-H:M:S)")
    };
    let num = |p: &str| -> Result<u64, String> {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(&format!("{p:?} is not a number")));
        }
        p.parse::<u64>().map_err(|_| bad("number too large"))
    };
    let t = s.trim();
    let secs = match t.split_once('-') {
        Some((d, rest)) => {
            let days = num(d)?;
            let parts: Vec<u64> = rest.split(':').map(num).collect::<Result<_, _>>()?;
            let (h, m, sec) = match parts[..] {
                [h] => (h, 0, 0),
                [h, m] => (h, m, 0),
                [h, m, sec] => (h, m, sec),
                _ => return Err(bad("too many fields")),
            };
            ((days * 24 + h) * 60 + m) * 60 + sec
        }
        None => {
            let parts: Vec<u64> = t.split(':').map(num).collect::<Result<_, _>>()?;
            match parts[..] {
                [m] => m * 60,
                [m, sec] => m * 60 + sec,
                [h, m, sec] => (h * 60 + m) * 60 + sec,
                _ => return Err(bad("too many fields")),
            }
        }
    };
    if secs == 0 {
        return Err(bad("must be longer than zero"));
    }
    Ok(secs)
}

/// `D-HH:MM:SS` (or `HH:MM:SS` under a day), as sbatch reads it.
pub fn format_time(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}-{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// The array size: the request (or `min(tasks, DEFAULT_ARRAY_CAP)`), capped by the
/// cluster's MaxArraySize (indices 0..MaxArraySize-1) and by the number of tasks (an
/// element without tasks is useless). Returns the size and notes on what capped it.
pub fn array_size(tasks: u64, requested: Option<u64>, max_array_size: u64) -> (u64, Vec<String>) {
    let mut notes = Vec::new();
    let mut k = requested.unwrap_or(tasks.min(DEFAULT_ARRAY_CAP));
    if k > max_array_size {
        notes.push(format!(
            "array size {k} capped at the cluster's MaxArraySize = {max_array_size}"
        ));
        k = max_array_size;
    }
    if k > tasks {
        if requested.is_some() {
            notes.push(format!(
                "array size {k} reduced to the sweep's {tasks} task(s)"
            ));
        }
        k = tasks;
    }
    (k.max(1), notes)
}

/// MaxArraySize from `scontrol show config`, if Slurm answers.
fn cluster_max_array_size() -> Option<u64> {
    let out = Command::new("scontrol")
        .args(["show", "config"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    parse_max_array_size(&String::from_utf8_lossy(&out.stdout))
}

pub fn parse_max_array_size(config: &str) -> Option<u64> {
    config.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == "MaxArraySize")
            .then(|| v.trim().parse().ok())
            .flatten()
    })
}

/// Whether `synthsweep run` shares a sweep among processes (SLURM_PROCID/SLURM_NTASKS).
fn run_has_processes() -> bool {
    use clap::CommandFactory;
    crate::args::Cli::command()
        .find_subcommand("run")
        .is_some_and(|run| {
            run.get_arguments()
                .any(|a| a.get_long() == Some("processes"))
        })
}

fn absolute(p: &Path) -> Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}

/// The arguments after `--` as `synthsweep run` will read them on the nodes (with the
/// `--out` and `--shard` the script adds): an unknown flag or a value out of range is bad
/// input here, at submission, not an exit 2 of every element after queueing. Bounds that
/// depend on the node (CPUs for `--threads`/`--workers`) are left to the node.
fn check_run_args(spec: &Path, run_args: &[String], array: bool) -> Result<()> {
    use clap::Parser;
    let mut argv: Vec<String> = ["synthsweep", "run"].map(String::from).to_vec();
    argv.push(spec.display().to_string());
    argv.extend(["--out".into(), "ROOT".into()]);
    if array {
        argv.extend(["--shard".into(), "0/1".into()]);
    }
    argv.extend(run_args.iter().cloned());
    match crate::args::Cli::try_parse_from(&argv) {
        Ok(_) => Ok(()),
        Err(e) if e.to_string().contains("CPUs this process may use") => Ok(()),
        Err(e) => {
            let first = e.to_string();
            let first = first
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("error: ");
            bail!(
                "-- {}: not arguments `synthsweep run` takes on the nodes: {first}",
                run_args.join(" ")
            )
        }
    }
}

impl TryFrom<SlurmArgs> for SlurmPlan {
    type Error = anyhow::Error;

    fn try_from(a: SlurmArgs) -> Result<Self> {
        check_run_args(&a.spec, &a.run_args, a.array.is_some())?;
        let spec = SweepSpec::from_path(&a.spec)?;
        let spec_name = spec.name().to_string();
        let name = a.job_name.clone().unwrap_or_else(|| spec_name.clone());
        let plan = spec.plan(TaskResolver::new())?;
        let tasks = plan.len();
        if tasks == 0 {
            bail!("{}: the sweep has no tasks", a.spec.display());
        }
        let time_s = parse_time(&a.time).map_err(anyhow::Error::msg)?;
        let signal_before_s = match a.signal_before {
            Some(s) if s >= time_s => bail!(
                "--signal-before {s}: must be shorter than --time ({} s)",
                time_s
            ),
            Some(s) => s,
            None => DEFAULT_SIGNAL_BEFORE.min(time_s / 2),
        };
        for (flag, v) in [("--nodes", a.nodes), ("--tasks-per-node", a.tasks_per_node)] {
            if v == 0 {
                bail!("{flag}: expected at least 1");
            }
        }
        if a.cpus_per_task == Some(0) {
            bail!("--cpus-per-task: expected at least 1");
        }
        if a.array.is_none() && a.nodes * a.tasks_per_node > 1 && !a.dry_run && !run_has_processes()
        {
            bail!(
                "--nodes/--tasks-per-node: {} processes would each run every task, but this build's `synthsweep run` has no multi-process mode (--processes); use --array, or --dry-run to see the script",
                a.nodes * a.tasks_per_node
            );
        }
        let mut notes = Vec::new();
        let array = match a.array {
            None => None,
            Some(_) if a.nodes > 1 || a.tasks_per_node > 1 => bail!(
                "--array: each element is one synthsweep process on one node; drop --nodes/--tasks-per-node or --array"
            ),
            Some(requested) => {
                if requested == Some(0) {
                    bail!("--array=K: expected K >= 1");
                }
                let max = match cluster_max_array_size() {
                    Some(m) => m,
                    None => {
                        notes.push(format!("scontrol did not answer: assuming Slurm's default MaxArraySize = {SLURM_DEFAULT_MAX_ARRAY_SIZE}"));
                        SLURM_DEFAULT_MAX_ARRAY_SIZE
                    }
                };
                let (k, n) = array_size(tasks, requested, max);
                notes.extend(n);
                Some(k)
            }
        };
        let root_text = a
            .out
            .clone()
            .unwrap_or_else(|| format!("results/{spec_name}"));
        let (root, local_root) = match OutputRoot::parse(&root_text)? {
            OutputRoot::Local(p) => {
                let abs = absolute(&p)?;
                (abs.display().to_string(), Some(abs))
            }
            s3 => (s3.display(), None),
        };
        let script_dir = match &local_root {
            Some(p) => p.join("_slurm"),
            None => absolute(Path::new("_slurm"))?,
        };
        let binary = match a.synthsweep {
            Some(b) => absolute(&b)?,
            None => std::env::current_exe().context("cannot find the synthsweep binary")?,
        };
        Ok(SlurmPlan {
            name,
            spec: absolute(&a.spec)?,
            root,
            local_root,
            binary,
            nodes: a.nodes,
            tasks_per_node: a.tasks_per_node,
            gpus_per_node: a.gpus_per_node,
            cpus_per_task: a.cpus_per_task,
            time_s,
            signal_before_s,
            partition: a.partition,
            account: a.account,
            array,
            script_dir,
            run_args: a.run_args,
            dry_run: a.dry_run,
            notes,
        })
    }
}

/// Quotes a word for bash.
fn sh(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The sbatch script.
pub fn render(p: &SlurmPlan) -> String {
    let mut s = String::from("#!/bin/bash\n");
    let what = match p.array {
        Some(k) => format!(
            "# synthsweep job array for sweep {:?}: element i of {k} runs shard i/{k} of its tasks.\n",
            p.name
        ),
        None => format!(
            "# synthsweep job for sweep {:?}: srun starts {} synthsweep process(es) per node on {} node(s);\n# they share the sweep's tasks through the output root (SLURM_PROCID / SLURM_NTASKS).\n",
            p.name, p.tasks_per_node, p.nodes
        ),
    };
    s += "# Rendered by `synthsweep slurm`; scripts/slurm/*.sbatch are the commented templates.\n";
    s += &what;
    s += &format!(
        "# SIGUSR1 {} s before the time limit (or `scancel --signal=USR1 JOB`): each process\n# checkpoints its in-flight tasks, commits finished ones and exits {EXIT_PREEMPTED}; the job is then\n# requeued and resumes where it stopped.\n",
        p.signal_before_s
    );
    let mut d = |k: &str, v: String| s += &format!("#SBATCH --{k}={v}\n");
    d("job-name", sh(&p.name));
    if let Some(k) = p.array {
        d("array", format!("0-{}", k - 1));
    }
    d("nodes", p.nodes.to_string());
    d("ntasks-per-node", p.tasks_per_node.to_string());
    if p.gpus_per_node > 0 {
        d("gpus-per-node", p.gpus_per_node.to_string());
    }
    if let Some(c) = p.cpus_per_task {
        d("cpus-per-task", c.to_string());
    }
    d("time", format_time(p.time_s));
    if let Some(v) = &p.partition {
        d("partition", sh(v));
    }
    if let Some(v) = &p.account {
        d("account", sh(v));
    }
    let log = if p.array.is_some() {
        "%x-%A_%a.out"
    } else {
        "%x-%j.out"
    };
    d("output", sh(&p.script_dir.join(log).display().to_string()));
    d("open-mode", "append".into());
    d("signal", format!("USR1@{}", p.signal_before_s));
    s += "#SBATCH --requeue\n\n";
    s += &format!("SYNTHSWEEP={}\n", sh(&p.binary.display().to_string()));
    s += &format!("SPEC={}\n", sh(&p.spec.display().to_string()));
    s += &format!("ROOT={}\n", sh(&p.root));
    let extra: String = p.run_args.iter().map(|a| format!(" {}", sh(a))).collect();
    let run = match p.array {
        Some(k) => {
            s += &format!("COUNT={k}\n");
            s += "echo \"synthsweep: job ${SLURM_JOB_ID} element ${SLURM_ARRAY_TASK_ID}/${COUNT} on $(hostname), restart ${SLURM_RESTART_COUNT:-0}\"\n";
            format!("srun \"$SYNTHSWEEP\" run \"$SPEC\" --out \"$ROOT\" --shard \"${{SLURM_ARRAY_TASK_ID}}/${{COUNT}}\"{extra}")
        }
        None => {
            s += "echo \"synthsweep: job ${SLURM_JOB_ID} on ${SLURM_JOB_NODELIST}, ${SLURM_NTASKS} process(es), restart ${SLURM_RESTART_COUNT:-0}\"\n";
            format!("srun \"$SYNTHSWEEP\" run \"$SPEC\" --out \"$ROOT\"{extra}")
        }
    };
    s += &format!("rc=0\n{run} || rc=$?\n");
    s += &format!(
        "if [ \"$rc\" -eq {EXIT_PREEMPTED} ]; then\n  echo \"synthsweep: preempted or transient (exit {EXIT_PREEMPTED}), requeueing job ${{SLURM_JOB_ID}} to resume\"\n  scontrol requeue \"${{SLURM_JOB_ID}}\"\nelif [ \"$rc\" -eq {EXIT_STORAGE} ] && [ \"${{SLURM_RESTART_COUNT:-0}}\" -lt {STORAGE_REQUEUES} ]; then\n  echo \"synthsweep: storage failure (exit {EXIT_STORAGE}), requeueing job ${{SLURM_JOB_ID}} (restart ${{SLURM_RESTART_COUNT:-0}}; at most {STORAGE_REQUEUES})\"\n  scontrol requeue \"${{SLURM_JOB_ID}}\"\nfi\nexit \"$rc\"\n"
    );
    s
}

pub fn slurm(a: SlurmArgs) -> Result<()> {
    let plan = SlurmPlan::try_from(a)?;
    for n in &plan.notes {
        eprintln!("note: {n}");
    }
    let script = render(&plan);
    if plan.dry_run {
        out!("{script}")?;
        return Ok(());
    }
    std::fs::create_dir_all(&plan.script_dir)
        .with_context(|| format!("cannot create {}", plan.script_dir.display()))?;
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    let path = plan
        .script_dir
        .join(format!("{}-{stamp}.sbatch", plan.name));
    std::fs::write(&path, &script).with_context(|| format!("cannot write {}", path.display()))?;
    let out = Command::new("sbatch")
        .arg("--parsable")
        .arg(&path)
        .output()
        .context("cannot run sbatch (is Slurm installed? --dry-run prints the script)")?;
    if !out.status.success() {
        bail!(
            "sbatch refused {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let id = String::from_utf8_lossy(&out.stdout);
    let id = id.trim().split(';').next().unwrap_or("").to_string();
    eprintln!(
        "submitted {} as job {id} (script {}); follow it with `squeue -j {id}` and `synthsweep status {}`",
        match plan.array {
            Some(k) => format!("a job array of {k}"),
            None => format!("{} node(s) x {} process(es)", plan.nodes, plan.tasks_per_node),
        },
        path.display(),
        plan.root
    );
    outln!("{id}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_formats_as_slurm_reads_them() {
        assert_eq!(parse_time("90"), Ok(90 * 60));
        assert_eq!(parse_time("5:30"), Ok(330));
        assert_eq!(parse_time("1:02:03"), Ok(3723));
        assert_eq!(parse_time("2-3"), Ok((2 * 24 + 3) * 3600));
        assert_eq!(parse_time("1-0:30"), Ok(86400 + 1800));
        assert_eq!(parse_time("1-00:00:10"), Ok(86410));
        for bad in [
            "",
            "abc",
            "1:2:3:4",
            "-5",
            "1-",
            "0",
            "1.5",
            "1-2:3:4:5",
            "00:00",
        ] {
            let e = parse_time(bad).unwrap_err();
            assert!(e.starts_with("--time"), "{bad}: {e}");
        }
        assert_eq!(format_time(3723), "01:02:03");
        assert_eq!(format_time(86410), "1-00:00:10");
        assert_eq!(parse_time(&format_time(200_000)), Ok(200_000));
    }

    #[test]
    fn array_is_sized_by_tasks_and_capped_by_max_array_size() {
        assert_eq!(array_size(3, None, 1001).0, 3);
        assert_eq!(array_size(50_000, None, 1001).0, DEFAULT_ARRAY_CAP);
        assert_eq!(array_size(50_000, None, 100).0, 100);
        let (k, notes) = array_size(10, Some(8), 5);
        assert_eq!(k, 5);
        assert!(notes[0].contains("MaxArraySize = 5"), "{notes:?}");
        let (k, notes) = array_size(3, Some(8), 1001);
        assert_eq!(k, 3);
        assert!(notes[0].contains("3 task(s)"), "{notes:?}");
        assert_eq!(
            parse_max_array_size("Foo = 1\nMaxArraySize            = 5\nBar=2"),
            Some(5)
        );
        assert_eq!(parse_max_array_size("Foo = 1"), None);
    }

    fn plan(array: Option<u64>) -> SlurmPlan {
        SlurmPlan {
            name: "study one".into(),
            spec: "/data/spec.toml".into(),
            root: "/data/out".into(),
            local_root: Some("/data/out".into()),
            binary: "/opt/synthsweep".into(),
            nodes: 2,
            tasks_per_node: 1,
            gpus_per_node: 4,
            cpus_per_task: Some(16),
            time_s: 7200,
            signal_before_s: 120,
            partition: Some("gpu".into()),
            account: None,
            array,
            script_dir: "/data/out/_slurm".into(),
            run_args: vec!["--batch-tasks".into(), "64".into()],
            dry_run: true,
            notes: vec![],
        }
    }

    #[test]
    fn multinode_script_runs_one_srun_and_requeues_on_preemption() {
        let s = render(&plan(None));
        for line in [
            "#SBATCH --job-name='study one'",
            "#SBATCH --nodes=2",
            "#SBATCH --ntasks-per-node=1",
            "#SBATCH --gpus-per-node=4",
            "#SBATCH --cpus-per-task=16",
            "#SBATCH --time=02:00:00",
            "#SBATCH --partition=gpu",
            "#SBATCH --output=/data/out/_slurm/%x-%j.out",
            "#SBATCH --open-mode=append",
            "#SBATCH --signal=USR1@120",
            "#SBATCH --requeue",
            "srun \"$SYNTHSWEEP\" run \"$SPEC\" --out \"$ROOT\" --batch-tasks 64 || rc=$?",
            "if [ \"$rc\" -eq 75 ]; then",
            "  scontrol requeue \"${SLURM_JOB_ID}\"",
            "elif [ \"$rc\" -eq 74 ] && [ \"${SLURM_RESTART_COUNT:-0}\" -lt 10 ]; then",
        ] {
            assert!(s.lines().any(|l| l == line), "missing {line:?} in\n{s}");
        }
        assert!(!s.contains("--account"));
        assert!(!s.contains("--array"));
    }

    #[test]
    fn array_script_runs_its_shard() {
        let s = render(&plan(Some(7)));
        assert!(s.contains("#SBATCH --array=0-6\n"), "{s}");
        assert!(s.contains("COUNT=7\n"));
        assert!(s.contains("--shard \"${SLURM_ARRAY_TASK_ID}/${COUNT}\""));
        assert!(s.contains("#SBATCH --output=/data/out/_slurm/%x-%A_%a.out\n"));
    }

    #[test]
    fn words_are_quoted_for_bash() {
        assert_eq!(sh("/a/b-c_d.toml"), "/a/b-c_d.toml");
        assert_eq!(sh("a b"), "'a b'");
        assert_eq!(sh("it's"), r"'it'\''s'");
        assert_eq!(sh("$HOME"), "'$HOME'");
    }
}
