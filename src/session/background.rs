//! Training in a background process of its own session (no controlling terminal: closing the
//! SSH connection does not reach it), its output in the run directory: `--detach`, and the
//! hand-off when the user leaves the screen with the training running.

use std::io::Write as _;

use anyhow::{Context as _, Result, bail};

use super::ExitCode;
use crate::run::{RunDir, shell_quote};

/// Start this same command again in the background for a run directory that exists (made and
/// checked by the caller); `add_run_flag` names the run on its command line (a default name
/// reserved here), `append` keeps the output of the run's earlier sessions in
/// `convscope.out` (a resumed run).
pub(super) fn spawn_detached(run: &RunDir, add_run_flag: bool, append: bool) -> Result<()> {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os()
        .skip(1)
        .filter(|a| a != "--detach")
        .collect();
    if add_run_flag {
        args.push("--run".into());
        args.push(run.path.clone().into_os_string());
    }
    args.push("--headless".into());
    let pid = start_background(run, &args, append)?;
    let _ = writeln!(
        std::io::stderr(),
        "convscope: training in the background (pid {pid}), output in {}",
        shell_quote(&run.out_path())
    );
    Ok(())
}

/// Run `convscope ARGS` in a session of its own (no controlling terminal), its output in
/// `RUN/convscope.out`, and wait until it serves the run's control socket; returns its pid.
fn start_background(run: &RunDir, args: &[std::ffi::OsString], append: bool) -> Result<u32> {
    let out_path = run.out_path();
    let out = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(&out_path)
        .with_context(|| format!("creating {}", out_path.display()))?;
    let exe = std::env::current_exe().context("finding the convscope binary")?;
    let mut child = std::process::Command::new("setsid")
        .arg(&exe)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .context("starting the background training (needs `setsid`, from util-linux)")?;
    let socket = run.socket_path();
    let start = std::time::Instant::now();
    loop {
        if crate::run::control::is_live(&socket) && run.events_path().exists() {
            break;
        }
        if let Some(status) = child.try_wait()? {
            let output = std::fs::read_to_string(&out_path).unwrap_or_default();
            bail!("the background training ended at once ({status}):\n{output}");
        }
        if start.elapsed() > std::time::Duration::from_mins(5) {
            bail!(
                "the background training did not start within 5 minutes; see {}",
                out_path.display()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Ok(child.id())
}

/// Resume a run that was just stopped for the purpose in a background process of its own
/// session (as `--detach` starts one), and say how to watch it.
pub(super) fn hand_over(run: &RunDir) -> Result<ExitCode> {
    let args: Vec<std::ffi::OsString> = vec![
        "resume".into(),
        run.path.as_os_str().to_owned(),
        "--headless".into(),
    ];
    let pid = start_background(run, &args, true).with_context(|| {
        format!(
            "the training stopped with a checkpoint but did not restart in the background; continue it with: convscope resume {}",
            shell_quote(&run.path)
        )
    })?;
    let _ = writeln!(
        std::io::stderr(),
        "convscope: the training goes on in the background (pid {pid}), output in {}; it survives this terminal closing. Watch it with: convscope view {}",
        run.out_path().display(),
        run.path.display()
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_background_process_that_ends_at_once_is_reported_with_its_output() {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = RunDir {
            path: dir.path().to_path_buf(),
        };
        // The test binary refuses an unknown flag and ends at once.
        let err =
            start_background(&run, &["--no-such-flag".into()], false).expect_err("ended at once");
        assert!(err.to_string().contains("ended at once"), "{err}");
        assert!(run.out_path().is_file());
    }
}
