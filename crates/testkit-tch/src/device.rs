//! The device tests run on: `SYNTHSWEEP_TEST_DEVICE` (`cpu`, `cuda` or `cuda:N`), CPU when unset.
//!
//! Tests that can run on a GPU take their device from [`test_device`]; fixture tolerances
//! are those of the CPU runs, and checks read results back to the CPU.
use tch::{Device, Tensor};

/// The device named by `SYNTHSWEEP_TEST_DEVICE`, CPU when unset. Panics on a value that is
/// not `cpu`, `cuda` or `cuda:N`, and when a CUDA device is asked for but not present (a test
/// run that asked for the GPU must not pass on the CPU unnoticed).
pub fn test_device() -> Device {
    let Ok(v) = std::env::var("SYNTHSWEEP_TEST_DEVICE") else {
        return Device::Cpu;
    };
    let device = match v.trim() {
        "" | "cpu" => Device::Cpu,
        "cuda" => Device::Cuda(0),
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(i)) => Device::Cuda(i),
            _ => panic!("SYNTHSWEEP_TEST_DEVICE={v:?}: expected cpu, cuda or cuda:N"),
        },
    };
    if let Device::Cuda(i) = device {
        let n = tch::Cuda::device_count();
        assert!(
            (i as i64) < n,
            "SYNTHSWEEP_TEST_DEVICE={v:?}: {n} CUDA device(s) present"
        );
    }
    device
}

/// `t` on `device`: the same tensor (a shallow clone) where it already is, a copy elsewhere.
pub fn on_device(t: &Tensor, device: Device) -> Tensor {
    if t.device() == device {
        t.shallow_clone()
    } else {
        t.to_device(device)
    }
}
