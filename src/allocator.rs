//! glibc's allocator hands every freed block over 32 MiB back to the kernel, so a training step
//! that allocates tens of 10–90 MB tensors page-faults them all in again, every step (measured:
//! Adam 100 ms -> 30 ms, the whole step 139 -> 175 img/s at batch 64 without it). Its thresholds
//! can only be raised before the process starts, through the environment: so the binary starts
//! itself once more with them set. `CONVSCOPE_MALLOC_TUNING=0` turns this off.

/// Re-execute this process with the allocator thresholds raised, unless already done or off.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::prelude::CommandExt as _;
        let off = crate::yesno::env("CONVSCOPE_MALLOC_TUNING") == Some(false);
        if off || std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some() {
            return;
        }
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let err = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env("MALLOC_MMAP_THRESHOLD_", "4000000000")
            .env("MALLOC_TRIM_THRESHOLD_", "8000000000")
            .exec();
        // Only reached when exec failed: carry on untuned.
        tracing::debug!("allocator tuning skipped: {err}");
    }
}
