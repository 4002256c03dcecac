//! Device choice in one place: CUDA when present, CPU otherwise, or what the user names.
use crate::error::{ModelError, Result};
use tch::Device;

/// The device synthsweep uses when none is named: the first CUDA device if libtorch sees
/// one, else the CPU.
pub fn default_device() -> Device {
    Device::cuda_if_available()
}

/// Parses `cpu`, `cuda`, `cuda:N` or `auto`.
pub fn parse_device(s: &str) -> Result<Device> {
    let s = s.trim().to_ascii_lowercase();
    let bad = |msg: String| ModelError::invalid("device", &s, msg);
    match s.as_str() {
        "auto" => Ok(default_device()),
        "cpu" => Ok(Device::Cpu),
        "cuda" => {
            if tch::Cuda::is_available() {
                Ok(Device::Cuda(0))
            } else {
                Err(bad(
                    "CUDA is not available on this machine; use `cpu`".into()
                ))
            }
        }
        _ => {
            let Some(n) = s.strip_prefix("cuda:") else {
                return Err(bad("expected `auto`, `cpu`, `cuda` or `cuda:N`".into()));
            };
            let n: usize = n
                .parse()
                .map_err(|_| bad("expected `cuda:N` with N a device index".into()))?;
            let count = tch::Cuda::device_count() as usize;
            if n >= count {
                return Err(bad(format!("this machine has {count} CUDA device(s)")));
            }
            Ok(Device::Cuda(n))
        }
    }
}

/// A short human name for a device, as recorded in outputs.
pub fn device_name(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}").to_lowercase(),
    }
}
