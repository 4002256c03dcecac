//! Who takes part in a multi-process run: the process count, this process's index and
//! every process's `host:port` (timely's host file format), from command-line arguments or
//! from a Slurm step (see [`crate::slurm`]).
use crate::error::{DistError, Result};
use std::path::Path;

/// timely's default first port (`localhost:2101`, `localhost:2102`, ...).
pub const DEFAULT_PORT: u16 = 2101;

/// The processes of a run and which one this is. Process 0 is the coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// This process's index, `0 <= index < addresses.len()`.
    pub index: usize,
    /// `host:port` of every process, in process order.
    pub addresses: Vec<String>,
    /// Where the configuration came from, for log lines: `--hosts FILE`, `Slurm job 42`, ...
    pub origin: String,
    /// CPU cores this process may use when it runs on CPU (Slurm's `SLURM_CPUS_PER_TASK`),
    /// if known; otherwise the caller shares the machine's cores among [`Self::local_processes`].
    pub cpus_per_process: Option<usize>,
}

impl Cluster {
    /// Number of processes.
    pub fn processes(&self) -> usize {
        self.addresses.len()
    }

    /// Host part of an address (`[::1]:2101` -> `[::1]`).
    fn host_of(address: &str) -> &str {
        address.rsplit_once(':').map_or(address, |(h, _)| h)
    }

    /// How many processes of the run share this process's host (so share its cores).
    pub fn local_processes(&self) -> usize {
        let me = Self::host_of(&self.addresses[self.index]);
        self.addresses
            .iter()
            .filter(|a| Self::host_of(a) == me)
            .count()
    }

    /// This process's rank among the processes of its host (0 for the first one listed).
    pub fn local_rank(&self) -> usize {
        let me = Self::host_of(&self.addresses[self.index]);
        self.addresses[..self.index]
            .iter()
            .filter(|a| Self::host_of(a) == me)
            .count()
    }

    /// From `--processes N --process I [--hosts FILE | --port BASE]`. Without a host file
    /// the processes are `localhost:BASE+i` (BASE defaults to timely's 2101).
    pub fn from_args(
        processes: usize,
        index: usize,
        hosts: Option<&Path>,
        port: Option<u16>,
    ) -> Result<Cluster> {
        if processes == 0 {
            return Err(DistError::config("--processes: expected at least 1"));
        }
        if index >= processes {
            return Err(DistError::config(format!(
                "--process {index}: expected an index below --processes {processes} (0..{})",
                processes - 1
            )));
        }
        let (addresses, origin) = match hosts {
            Some(path) => {
                if port.is_some() {
                    return Err(DistError::config(
                        "--port and --hosts do not go together: the host file names every port",
                    ));
                }
                let text = std::fs::read_to_string(path)
                    .map_err(|e| DistError::config(format!("--hosts {}: {e}", path.display())))?;
                let addresses = parse_hostfile(&text, &path.display().to_string())?;
                if addresses.len() != processes {
                    return Err(DistError::config(format!(
                        "--hosts {}: {} address(es) for --processes {processes}; expected one line per process",
                        path.display(),
                        addresses.len()
                    )));
                }
                (addresses, format!("--hosts {}", path.display()))
            }
            None => {
                let base = port.unwrap_or(DEFAULT_PORT);
                let last = base as usize + processes - 1;
                if last > u16::MAX as usize {
                    return Err(DistError::config(format!(
                        "--port {base}: {processes} processes need ports up to {last}, above 65535"
                    )));
                }
                let addresses = (0..processes)
                    .map(|i| format!("localhost:{}", base as usize + i))
                    .collect();
                (addresses, format!("localhost ports {base}..={last}"))
            }
        };
        Ok(Cluster {
            index,
            addresses,
            origin,
            cpus_per_process: None,
        })
    }
}

/// Parses a host file: one `host:port` per process line, in process order; blank lines and
/// `#` comments are skipped. `file` names the file in error messages.
pub fn parse_hostfile(text: &str, file: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad = |why: &str| {
            DistError::config(format!(
                "{file}:{}: {line:?}: {why}; expected host:port, e.g. node01:2101",
                n + 1
            ))
        };
        let (host, port) = line.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(bad("bad host name"));
        }
        match port.parse::<u16>() {
            Ok(p) if p > 0 => {}
            _ => return Err(bad("bad port")),
        }
        out.push(line.to_string());
    }
    if out.is_empty() {
        return Err(DistError::config(format!("{file}: no host:port line")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_ports_follow_the_base() {
        let c = Cluster::from_args(3, 1, None, Some(4000)).unwrap();
        assert_eq!(
            c.addresses,
            ["localhost:4000", "localhost:4001", "localhost:4002"]
        );
        assert_eq!((c.index, c.processes(), c.local_processes()), (1, 3, 3));
        let d = Cluster::from_args(2, 0, None, None).unwrap();
        assert_eq!(d.addresses, ["localhost:2101", "localhost:2102"]);
    }

    #[test]
    fn bad_counts_and_indices_are_refused() {
        let e = Cluster::from_args(2, 2, None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--process 2") && e.contains("0..1"), "{e}");
        let e = Cluster::from_args(0, 0, None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 1"), "{e}");
        let e = Cluster::from_args(3, 0, None, Some(65534))
            .unwrap_err()
            .to_string();
        assert!(e.contains("65535"), "{e}");
    }

    #[test]
    fn hostfile_lines_comments_and_errors() {
        let text = "# the run\nnode1:2101\n\n  node1:2102  \nnode2:2101 # gpu node\n";
        assert_eq!(
            parse_hostfile(text, "h").unwrap(),
            ["node1:2101", "node1:2102", "node2:2101"]
        );
        let e = parse_hostfile("a:1\nnode2\n", "hosts.txt")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("hosts.txt:2: \"node2\": no port"), "{e}");
        let e = parse_hostfile("a:99999\n", "h").unwrap_err().to_string();
        assert!(e.contains("bad port"), "{e}");
        assert!(parse_hostfile("\n# nothing\n", "h").is_err());
    }

    #[test]
    fn hostfile_must_match_the_process_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        std::fs::write(&path, "a:1\nb:1\nb:2\n").unwrap();
        let c = Cluster::from_args(3, 2, Some(&path), None).unwrap();
        assert_eq!((c.local_processes(), c.local_rank()), (2, 1));
        let e = Cluster::from_args(2, 0, Some(&path), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("3 address(es) for --processes 2"), "{e}");
        let e = Cluster::from_args(3, 0, Some(&path), Some(5))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--port and --hosts"), "{e}");
        let e = Cluster::from_args(3, 0, Some(&dir.path().join("nope")), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--hosts") && e.contains("nope"), "{e}");
    }
}
