//! glibc's allocator hands every freed block over 32 MiB back to the kernel, so a training step
//! that allocates tens of 10–90 MB tensors page-faults them all in again, every step (measured:
//! Adam 100 ms -> 30 ms, the whole step 139 -> 175 img/s at batch 64 without it). Its thresholds
//! can only be raised before the process starts, through the environment: so the binary starts
//! itself once more with them set. `CONVSCOPE_MALLOC_TUNING=0` turns this off.
//!
//! The same goes for glibc's per-thread arenas: a thread other than the main one allocates from
//! heaps of its own, and a heap that falls empty is unmapped whatever the trim threshold says.
//! The trainer and the data pipeline run on such threads, so each epoch's batch buffers and
//! pooling codes were faulted in afresh: about 10,400 page faults an epoch at 512 images
//! (`perf stat -e page-faults` on `bench --end-to-end --epochs 2` against `--epochs 6`: 41,700
//! more faults without, 168 with `MALLOC_ARENA_MAX=1`). One arena keeps them all in the main
//! heap, where the thresholds hold; a `MALLOC_ARENA_MAX` already set is left as it is.

/// Re-execute this process with the allocator thresholds raised and one arena, unless already
/// done or off.
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
        // One arena, unless the user chose otherwise.
        let arena = std::env::var_os("MALLOC_ARENA_MAX")
            .is_none()
            .then_some(("MALLOC_ARENA_MAX", "1"));
        let err = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env("MALLOC_MMAP_THRESHOLD_", "4000000000")
            .env("MALLOC_TRIM_THRESHOLD_", "8000000000")
            .envs(arena)
            .exec();
        // Only reached when exec failed: carry on untuned.
        tracing::debug!("allocator tuning skipped: {err}");
    }
}
