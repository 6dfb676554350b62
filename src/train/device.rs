//! Pick the burn device (and so the backend) named in the config.

use burn::tensor::Device;

use crate::config::{DeviceSpec, parse_device};

/// Create the device for `name` (`cpu`, `wgpu`, `cuda`, `cuda:N`).
pub fn create(name: &str) -> Result<Device, String> {
    match parse_device(name).map_err(|e| e.to_string())? {
        DeviceSpec::Cpu => Ok(Device::flex()),
        DeviceSpec::Wgpu => wgpu(),
        DeviceSpec::Cuda(n) => cuda(n),
    }
}

#[cfg(feature = "wgpu")]
fn wgpu() -> Result<Device, String> {
    Ok(Device::wgpu(burn::tensor::DeviceKind::default()))
}

#[cfg(not(feature = "wgpu"))]
fn wgpu() -> Result<Device, String> {
    Err("this convscope was built without GPU support for --device wgpu; rebuild with `cargo build --release --features wgpu`".into())
}

#[cfg(feature = "cuda")]
fn cuda(index: usize) -> Result<Device, String> {
    Ok(Device::cuda(index))
}

#[cfg(not(feature = "cuda"))]
fn cuda(_index: usize) -> Result<Device, String> {
    Err("this convscope was built without CUDA support for --device cuda; rebuild with `cargo build --release --features cuda` (needs internet access at build time), or use --features wgpu and --device wgpu".into())
}

/// A human description of the device for the status line.
#[must_use]
pub fn describe(name: &str) -> String {
    match parse_device(name) {
        Ok(DeviceSpec::Cpu) => {
            let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
            format!("cpu (flex, {threads} threads)")
        }
        Ok(DeviceSpec::Wgpu) => "wgpu (GPU)".into(),
        Ok(DeviceSpec::Cuda(n)) => format!("cuda:{n}"),
        Err(_) => name.to_string(),
    }
}
