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
    let forced = std::env::var("CONVSCOPE_WGPU_ANY_ADAPTER")
        .is_ok_and(|v| crate::cli::parse_bool(&v) == Ok(true));
    if !forced && let [Err(first), Err(_), Err(_), Err(_)] = &probes {
        return Err(format!(
            "--device wgpu: no GPU found ({first}; a software renderer such as llvmpipe does \
             not count: it trains far slower than --device cpu); install the GPU's Vulkan \
             driver and loader (libvulkan1), or use --device cpu \
             (CONVSCOPE_WGPU_ANY_ADAPTER=1 takes whatever adapter wgpu offers)"
        ));
    }
    Ok(Device::wgpu(burn::tensor::DeviceKind::default()))
}

#[cfg(not(feature = "wgpu"))]
fn wgpu() -> Result<Device, String> {
    Err("this convscope was built without GPU support for --device wgpu; rebuild with `cargo build --release --features wgpu`".into())
}

#[cfg(feature = "cuda")]
fn cuda(index: usize) -> Result<Device, String> {
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
