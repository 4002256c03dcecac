//! A multi-process run inside a Slurm step (`srun -n N synthsweep run SPEC`): the process
//! index and count, every task's `host:port`, the port base and the CPU share, read from
//! the variables srun sets. [`SlurmStep::from_env`] and [`SlurmStep::cluster`] are pure
//! (the environment comes in as a lookup function), so they are unit-tested without Slurm;
//! only [`hostnames`] runs `scontrol` for a compressed node list such as `node[01-03]`.
use crate::cluster::Cluster;
use crate::error::{DistError, Result};

/// Ports of one job on one node: `base .. base + PORTS_PER_JOB` (one per task on the node).
pub const PORTS_PER_JOB: u16 = 64;

/// What srun tells one task about its step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlurmStep {
    /// `SLURM_PROCID`: this task's rank in the step.
    pub procid: usize,
    /// `SLURM_NTASKS`: tasks in the step.
    pub ntasks: usize,
    /// `SLURM_JOB_ID` (0 when absent); the port base is derived from it.
    pub job_id: u64,
    /// `SLURM_NODEID`: this task's node (index into the node list), to check the layout.
    pub node_id: Option<usize>,
    /// `SLURM_STEP_NODELIST`, else `SLURM_JOB_NODELIST` (possibly compressed: `n[1-3]`).
    pub nodelist: String,
    /// `SLURM_STEP_TASKS_PER_NODE` (else `SLURM_TASKS_PER_NODE`) expanded: tasks per node.
    pub tasks_per_node: Vec<usize>,
    /// `SLURM_CPUS_PER_TASK`, if set.
    pub cpus_per_task: Option<usize>,
}

impl SlurmStep {
    /// The step this process is a task of, or `None` when it is not one task of a step of
    /// several (no `SLURM_PROCID`/`SLURM_NTASKS`/node list, or one task): then the run is
    /// local. Malformed values are an error naming the variable.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Option<SlurmStep>> {
        let (Some(procid), Some(ntasks)) = (env("SLURM_PROCID"), env("SLURM_NTASKS")) else {
            return Ok(None);
        };
        let Some(nodelist) = env("SLURM_STEP_NODELIST").or_else(|| env("SLURM_JOB_NODELIST"))
        else {
            return Ok(None);
        };
        let ntasks: usize = number("SLURM_NTASKS", &ntasks)?;
        if ntasks <= 1 {
            return Ok(None);
        }
        let procid: usize = number("SLURM_PROCID", &procid)?;
        if procid >= ntasks {
            return Err(DistError::config(format!(
                "SLURM_PROCID={procid} is not below SLURM_NTASKS={ntasks}"
            )));
        }
        let (tpn_var, tpn) = match env("SLURM_STEP_TASKS_PER_NODE") {
            Some(v) => ("SLURM_STEP_TASKS_PER_NODE", v),
            None => match env("SLURM_TASKS_PER_NODE") {
                Some(v) => ("SLURM_TASKS_PER_NODE", v),
                None => {
                    return Err(DistError::config(
                        "inside a Slurm step of several tasks, but neither SLURM_STEP_TASKS_PER_NODE nor SLURM_TASKS_PER_NODE is set",
                    ))
                }
            },
        };
        let tasks_per_node = expand_tasks_per_node(&tpn)
            .map_err(|e| DistError::config(format!("{tpn_var}={tpn:?}: {e}")))?;
        let total: usize = tasks_per_node.iter().sum();
        if total != ntasks {
            return Err(DistError::config(format!(
                "{tpn_var}={tpn:?} adds up to {total} tasks, SLURM_NTASKS is {ntasks}"
            )));
        }
        Ok(Some(SlurmStep {
            procid,
            ntasks,
            job_id: env("SLURM_JOB_ID")
                .map(|v| number("SLURM_JOB_ID", &v))
                .transpose()?
                .unwrap_or(0),
            node_id: env("SLURM_NODEID")
                .map(|v| number("SLURM_NODEID", &v))
                .transpose()?,
            nodelist,
            tasks_per_node,
            cpus_per_task: env("SLURM_CPUS_PER_TASK")
                .map(|v| number("SLURM_CPUS_PER_TASK", &v))
                .transpose()?,
        }))
    }

    /// Every task's `host:port`, given the step's host names in node order (see
    /// [`hostnames`]). Tasks are laid out block-wise (srun's default: the first
    /// `tasks_per_node[0]` ranks on the first node, ...); task `k` of a node listens on
    /// `base + k`, with `base` from `port` or else derived from the job id
    /// ([`port_base`]), so two jobs sharing a node do not collide.
    pub fn cluster(&self, hosts: &[String], port: Option<u16>) -> Result<Cluster> {
        if hosts.len() != self.tasks_per_node.len() {
            return Err(DistError::config(format!(
                "Slurm node list {:?} has {} host(s) but the tasks-per-node list has {} entries",
                self.nodelist,
                hosts.len(),
                self.tasks_per_node.len()
            )));
        }
        let base = port.unwrap_or_else(|| port_base(self.job_id));
        let most = self.tasks_per_node.iter().copied().max().unwrap_or(1);
        if port.is_none() && most > PORTS_PER_JOB as usize {
            return Err(DistError::config(format!(
                "{most} tasks on one node: at most {PORTS_PER_JOB} per node with the derived ports; pass --port BASE"
            )));
        }
        if base as usize + most - 1 > u16::MAX as usize {
            return Err(DistError::config(format!(
                "--port {base}: {most} tasks on one node need ports above 65535"
            )));
        }
        let mut addresses = Vec::with_capacity(self.ntasks);
        let mut my_node = None;
        for (node, (host, &n)) in hosts.iter().zip(&self.tasks_per_node).enumerate() {
            for k in 0..n {
                if addresses.len() == self.procid {
                    my_node = Some(node);
                }
                addresses.push(format!("{host}:{}", base as usize + k));
            }
        }
        if let (Some(expected), Some(actual)) = (my_node, self.node_id) {
            if expected != actual {
                return Err(DistError::config(format!(
                    "Slurm task {} runs on node {actual}, but a block layout puts it on node {expected}: \
                     launch with srun's default --distribution=block, or give a --hosts file",
                    self.procid
                )));
            }
        }
        Ok(Cluster {
            index: self.procid,
            addresses,
            origin: format!("Slurm job {} ({} tasks)", self.job_id, self.ntasks),
            cpus_per_process: self.cpus_per_task,
        })
    }
}

fn number<T: std::str::FromStr>(var: &str, value: &str) -> Result<T> {
    value
        .trim()
        .parse()
        .map_err(|_| DistError::config(format!("{var}={value:?}: expected a number")))
}

/// Expands Slurm's compressed tasks-per-node list: `"2(x3),1"` -> `[2, 2, 2, 1]`.
pub fn expand_tasks_per_node(s: &str) -> std::result::Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        let (count, repeat) = match part.split_once("(x") {
            Some((c, r)) => {
                let r = r
                    .strip_suffix(')')
                    .ok_or_else(|| format!("{part:?}: expected N or N(xM)"))?;
                (
                    c,
                    r.parse::<usize>()
                        .map_err(|_| format!("{part:?}: bad repeat count"))?,
                )
            }
            None => (part, 1),
        };
        let count: usize = count
            .parse()
            .map_err(|_| format!("{part:?}: expected N or N(xM)"))?;
        if count == 0 || repeat == 0 {
            return Err(format!("{part:?}: counts must be positive"));
        }
        out.extend(std::iter::repeat_n(count, repeat));
    }
    Ok(out)
}

/// The first port of a job on each node: `20000 + (job_id % 640) * 64`, so concurrent jobs
/// on a node get disjoint ranges of [`PORTS_PER_JOB`] ports (unless their ids are 640 apart)
/// within 20000..60960.
pub fn port_base(job_id: u64) -> u16 {
    (20000 + (job_id % 640) * PORTS_PER_JOB as u64) as u16
}

/// The host names of a Slurm node list, in order: a plain `a,b` list as is; a compressed
/// one (`node[01-03]`) through `scontrol show hostnames`.
pub fn hostnames(nodelist: &str) -> Result<Vec<String>> {
    if !nodelist.contains('[') {
        return Ok(nodelist
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(String::from)
            .collect());
    }
    let out = std::process::Command::new("scontrol")
        .args(["show", "hostnames", nodelist])
        .output()
        .map_err(|e| {
            DistError::config(format!(
                "cannot expand the Slurm node list {nodelist:?}: scontrol: {e}"
            ))
        })?;
    if !out.status.success() {
        return Err(DistError::config(format!(
            "scontrol show hostnames {nodelist:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    fn step(vars: &[(&str, &str)]) -> Result<Option<SlurmStep>> {
        SlurmStep::from_env(env(vars))
    }

    #[test]
    fn tasks_per_node_expansion() {
        assert_eq!(expand_tasks_per_node("2(x3),1").unwrap(), [2, 2, 2, 1]);
        assert_eq!(expand_tasks_per_node("4").unwrap(), [4]);
        assert_eq!(expand_tasks_per_node("1,3(x2)").unwrap(), [1, 3, 3]);
        for bad in ["", "2(x", "x", "2(x0)", "0", "2(3)"] {
            assert!(expand_tasks_per_node(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn outside_a_step_of_several_tasks_the_run_is_local() {
        assert_eq!(step(&[]).unwrap(), None);
        // A job array task or a one-task step.
        let one = [
            ("SLURM_PROCID", "0"),
            ("SLURM_NTASKS", "1"),
            ("SLURM_JOB_NODELIST", "n1"),
            ("SLURM_TASKS_PER_NODE", "1"),
        ];
        assert_eq!(step(&one).unwrap(), None);
        // No node list.
        assert_eq!(
            step(&[("SLURM_PROCID", "0"), ("SLURM_NTASKS", "2")]).unwrap(),
            None
        );
    }

    #[test]
    fn a_two_node_step_with_uneven_tasks() {
        let vars = [
            ("SLURM_PROCID", "3"),
            ("SLURM_NTASKS", "4"),
            ("SLURM_JOB_ID", "1234"),
            ("SLURM_NODEID", "1"),
            ("SLURM_JOB_NODELIST", "ignored[1-9]"),
            ("SLURM_STEP_NODELIST", "gpu[01-02]"),
            ("SLURM_STEP_TASKS_PER_NODE", "3,1"),
            ("SLURM_TASKS_PER_NODE", "9"),
            ("SLURM_CPUS_PER_TASK", "8"),
        ];
        let s = step(&vars).unwrap().unwrap();
        assert_eq!(s.nodelist, "gpu[01-02]");
        assert_eq!(s.tasks_per_node, [3, 1]);
        let hosts = vec!["gpu01".to_string(), "gpu02".to_string()];
        let c = s.cluster(&hosts, None).unwrap();
        let b = port_base(1234);
        assert_eq!(b, 20000 + (1234 % 640) * 64);
        assert_eq!(
            c.addresses,
            [
                format!("gpu01:{b}"),
                format!("gpu01:{}", b + 1),
                format!("gpu01:{}", b + 2),
                format!("gpu02:{b}"),
            ]
        );
        assert_eq!((c.index, c.local_processes()), (3, 1));
        assert_eq!(c.cpus_per_process, Some(8));
        // An explicit base wins.
        let c = s.cluster(&hosts, Some(3000)).unwrap();
        assert_eq!(c.addresses[2], "gpu01:3002");
    }

    #[test]
    fn compressed_counts_and_the_job_tasks_per_node_fallback() {
        let vars = [
            ("SLURM_PROCID", "0"),
            ("SLURM_NTASKS", "7"),
            ("SLURM_JOB_ID", "7"),
            ("SLURM_JOB_NODELIST", "a,b,c,d"),
            ("SLURM_TASKS_PER_NODE", "2(x3),1"),
        ];
        let s = step(&vars).unwrap().unwrap();
        let hosts = hostnames(&s.nodelist).unwrap();
        assert_eq!(hosts, ["a", "b", "c", "d"]);
        let c = s.cluster(&hosts, None).unwrap();
        assert_eq!(c.processes(), 7);
        assert_eq!(c.addresses[6], format!("d:{}", port_base(7)));
        assert_eq!(c.local_processes(), 2);
    }

    #[test]
    fn two_jobs_on_one_node_get_disjoint_ports() {
        let (a, b) = (port_base(100), port_base(101));
        assert!(a.abs_diff(b) >= PORTS_PER_JOB);
        assert!((0..5000u64)
            .all(|j| port_base(j) >= 20000 && port_base(j) as u32 + PORTS_PER_JOB as u32 <= 65535));
    }

    #[test]
    fn malformed_variables_are_errors_naming_them() {
        let base = [
            ("SLURM_NTASKS", "2"),
            ("SLURM_JOB_NODELIST", "a"),
            ("SLURM_TASKS_PER_NODE", "2"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut v = base.to_vec();
            v.extend_from_slice(extra);
            step(&v).unwrap_err().to_string()
        };
        assert!(with(&[("SLURM_PROCID", "x")]).contains("SLURM_PROCID=\"x\""));
        assert!(with(&[("SLURM_PROCID", "2")]).contains("not below SLURM_NTASKS=2"));
        let e = step(&[
            ("SLURM_PROCID", "0"),
            ("SLURM_NTASKS", "3"),
            ("SLURM_JOB_NODELIST", "a"),
            ("SLURM_TASKS_PER_NODE", "2"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("adds up to 2 tasks, SLURM_NTASKS is 3"), "{e}");
        let e = step(&[
            ("SLURM_PROCID", "0"),
            ("SLURM_NTASKS", "2"),
            ("SLURM_JOB_NODELIST", "a"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("TASKS_PER_NODE"), "{e}");
    }

    #[test]
    fn a_cyclic_layout_is_refused() {
        let s = step(&[
            ("SLURM_PROCID", "1"),
            ("SLURM_NTASKS", "2"),
            ("SLURM_NODEID", "1"),
            ("SLURM_JOB_NODELIST", "a,b"),
            ("SLURM_TASKS_PER_NODE", "2,0"),
        ]);
        // "0" tasks on a node is malformed anyway.
        assert!(s.is_err());
        let s = step(&[
            ("SLURM_PROCID", "1"),
            ("SLURM_NTASKS", "4"),
            ("SLURM_NODEID", "1"),
            ("SLURM_JOB_NODELIST", "a,b"),
            ("SLURM_TASKS_PER_NODE", "2(x2)"),
        ])
        .unwrap()
        .unwrap();
        let e = s
            .cluster(&["a".into(), "b".into()], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("block"), "{e}");
        let e = s.cluster(&["a".into()], None).unwrap_err().to_string();
        assert!(e.contains("1 host(s)"), "{e}");
    }
}
