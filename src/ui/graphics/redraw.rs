//! Sixel through tmux's passthrough is drawn on the outer terminal behind tmux's back: tmux
//! does not keep it, and when tmux redraws the pane from its own grid (back from another
//! window, a client attaching or resizing, a session switch) the pictures are gone. So while
//! such pictures are shown, tmux is asked to tell this process when it redraws: hooks of this
//! tmux server, indexed by the process id so that they add to the user's own hooks, send
//! `SIGUSR1`, and the UI then draws the whole screen again. The hooks are removed when the UI
//! ends (a hook left behind by a killed process signals a process that is gone: nothing).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The tmux events after which tmux has redrawn the pane.
pub const HOOKS: [&str; 4] = [
    "client-attached",
    "client-resized",
    "client-session-changed",
    "session-window-changed",
];

/// Set while tmux has redrawn since the last [`TmuxRedraws::take`].
pub struct TmuxRedraws {
    flag: Arc<AtomicBool>,
    signal: signal_hook::SigId,
    pid: u32,
}

impl TmuxRedraws {
    /// Install the hooks and the signal handler; `None` when tmux or the handler refuses.
    #[must_use]
    pub fn start() -> Option<Self> {
        let flag = Arc::new(AtomicBool::new(false));
        let signal =
            match signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&flag)) {
                Ok(id) => id,
                Err(e) => {
                    tracing::warn!("cannot follow tmux's redraws: {e}");
                    return None;
                }
            };
        let me = Self {
            flag,
            signal,
            pid: std::process::id(),
        };
        for hook in HOOKS {
            let command = format!("run-shell -b 'kill -USR1 {} 2>/dev/null'", me.pid);
            if let Err(e) =
                super::detect::tmux_command(&["set-hook", "-g", &me.hook(hook), &command])
            {
                tracing::warn!("cannot set tmux's {hook} hook: {e}");
                return None;
            }
        }
        tracing::info!("sixel through tmux passthrough: redrawn when tmux redraws");
        Some(me)
    }

    /// This process's entry of `hook` (`session-window-changed[4242]`).
    fn hook(&self, hook: &str) -> String {
        format!("{hook}[{}]", self.pid)
    }

    /// Whether tmux has redrawn since the last call.
    pub fn take(&self) -> bool {
        self.flag.swap(false, Ordering::SeqCst)
    }
}

impl Drop for TmuxRedraws {
    fn drop(&mut self) {
        for hook in HOOKS {
            let _ = super::detect::tmux_command(&["set-hook", "-gu", &self.hook(hook)]);
        }
        signal_hook::low_level::unregister(self.signal);
    }
}
