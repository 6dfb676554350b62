//! The compute device (and so the burn backend) that a run trains on, made from the
//! [`DeviceSpec`] that the config names.

use burn::tensor::Device;

pub use crate::config::DeviceSpec;

/// A device that this build or machine cannot give.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error(
        "--device wgpu: no GPU found ({0}; a software renderer such as llvmpipe does not count: it trains far slower than --device cpu); install the GPU's Vulkan driver and loader (libvulkan1), or use --device cpu (CONVSCOPE_WGPU_ANY_ADAPTER=1 takes whatever adapter wgpu offers)"
    )]
    NoGpu(String),
    #[error(
        "this convscope was built without GPU support for --device wgpu; rebuild with `cargo build --release --features wgpu`"
    )]
    NoWgpuSupport,
    #[error(
        "this convscope was built without CUDA support for --device cuda; rebuild with `cargo build --release --features cuda` (needs internet access at build time), or use --features wgpu and --device wgpu"
    )]
    NoCudaSupport,
}

/// Create the device `spec` names.
pub fn create(spec: DeviceSpec) -> Result<Device, DeviceError> {
    match spec {
        DeviceSpec::Cpu => Ok(Device::flex()),
        DeviceSpec::Wgpu => wgpu(),
        DeviceSpec::Cuda(n) => cuda(n),
    }
}

#[cfg(feature = "wgpu")]
fn wgpu() -> Result<Device, DeviceError> {
    use burn::cubecl::device::WgpuDeviceKind as Kind;
    persist_tuning();
    // A software renderer (llvmpipe, lavapipe) is an adapter too, and trains orders of
    // magnitude slower than the CPU device: only a real GPU will do.
    let probes = [
        Kind::DiscreteGpu(0),
        Kind::IntegratedGpu(0),
        Kind::VirtualGpu(0),
        Kind::Other(0),
    ]
    .map(burn::cubecl::Device::wgpu);
    let forced = crate::yesno::env("CONVSCOPE_WGPU_ANY_ADAPTER") == Some(true);
    if !forced && let [Err(first), Err(_), Err(_), Err(_)] = &probes {
        return Err(DeviceError::NoGpu(first.to_string()));
    }
    Ok(Device::wgpu(burn::tensor::DeviceKind::default()))
}

#[cfg(not(feature = "wgpu"))]
fn wgpu() -> Result<Device, DeviceError> {
    Err(DeviceError::NoWgpuSupport)
}

#[cfg(feature = "cuda")]
fn cuda(index: usize) -> Result<Device, DeviceError> {
    persist_tuning();
    Ok(Device::cuda(index))
}

/// Keep CubeCL's autotune results (and compiled kernels) in one cache per user, so
/// that the minute of GPU kernel tuning happens once per machine, not once per run.
///
/// CubeCL's default puts them under the `target/` of the outermost Cargo project
/// above the working directory, which for an installed tool means a different
/// cache for every directory it is started from. A `cubecl.toml` that names
/// another place is respected.
#[cfg(any(feature = "wgpu", feature = "cuda"))]
fn persist_tuning() {
    use burn::cubecl::config::{CubeClRuntimeConfig, RuntimeConfig, cache::CacheConfig};

    let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
    if matches!(config.environment.path, CacheConfig::Target) {
        config.environment.path = CacheConfig::Directory(tuning_cache_dir());
    }
    let place = config.environment.path.root();
    if CubeClRuntimeConfig::try_set(config) {
        tracing::info!("GPU kernel tuning cache: {}", place.display());
    }
}

#[cfg(not(feature = "cuda"))]
fn cuda(_index: usize) -> Result<Device, DeviceError> {
    Err(DeviceError::NoCudaSupport)
}

/// A human description of the device for the status line.
#[must_use]
pub fn describe_spec(spec: DeviceSpec) -> String {
    match spec {
        DeviceSpec::Cpu => {
            let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
            format!("cpu (flex, {threads} threads)")
        }
        DeviceSpec::Wgpu => "wgpu (GPU)".into(),
        DeviceSpec::Cuda(n) => format!("cuda:{n}"),
    }
}

/// [`describe_spec`] for a device name from a validated config (the name itself otherwise).
#[must_use]
pub fn describe(name: &str) -> String {
    name.parse()
        .map_or_else(|_| name.to_string(), describe_spec)
}

/// Where GPU kernel tuning results are kept: `$CONVSCOPE_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/convscope/cubecl`, else `~/.cache/convscope/cubecl`.
#[must_use]
pub fn tuning_cache_dir() -> std::path::PathBuf {
    cache_dir_from(|name| std::env::var_os(name))
}

fn cache_dir_from(env: impl Fn(&str) -> Option<std::ffi::OsString>) -> std::path::PathBuf {
    use std::path::PathBuf;
    let var = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("CONVSCOPE_CACHE_DIR") {
        return dir;
    }
    let base = var("XDG_CACHE_HOME")
        .or_else(|| var("HOME").map(|home| home.join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("convscope").join("cubecl")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn with(vars: &[(&str, &str)]) -> PathBuf {
        cache_dir_from(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.into()))
    }

    #[test]
    fn tuning_cache_follows_the_override_then_xdg_then_home() {
        let all = [
            ("CONVSCOPE_CACHE_DIR", "/c"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(with(&all), PathBuf::from("/c"));
        assert_eq!(with(&all[1..]), PathBuf::from("/x/convscope/cubecl"));
        assert_eq!(with(&all[2..]), PathBuf::from("/h/.cache/convscope/cubecl"));
        // Empty values count as unset.
        assert_eq!(
            with(&[
                ("CONVSCOPE_CACHE_DIR", ""),
                ("XDG_CACHE_HOME", ""),
                ("HOME", "/h")
            ]),
            PathBuf::from("/h/.cache/convscope/cubecl")
        );
        assert!(with(&[]).ends_with("convscope/cubecl"));
    }
}
