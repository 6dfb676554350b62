//! `convscope bench --peers`: the same step timed in TensorFlow/Keras (the tutorial's own
//! stack) and PyTorch, on the same cores in the same run, and the ratios.

use std::path::Path;

use anyhow::{Context, Result};

use super::{Scratch, out};

/// The peer scripts, embedded so that the command needs nothing but a Python.
const PEER_TF: &str = include_str!("../../../bench/peer_tf.py");
const PEER_TORCH: &str = include_str!("../../../bench/peer_torch.py");

/// One peer: its name, script, and the packages it needs.
struct Peer {
    name: &'static str,
    file: &'static str,
    script: &'static str,
    /// Python modules whose absence means "install these".
    modules: &'static [&'static str],
    install: &'static str,
}

const PEERS: [Peer; 2] = [
    Peer {
        name: "TensorFlow/Keras",
        file: "peer_tf.py",
        script: PEER_TF,
        modules: &["tensorflow", "keras", "tf_keras", "scipy", "numpy"],
        install: "tensorflow-cpu tf-keras scipy",
    },
    Peer {
        name: "PyTorch",
        file: "peer_torch.py",
        script: PEER_TORCH,
        modules: &["torch", "numpy", "PIL"],
        install: "torch numpy pillow",
    },
];

/// What a peer run gave.
#[derive(Debug, Clone, PartialEq)]
pub enum PeerResult {
    /// Images per second: the best epoch after the first (the first warms up).
    Rate(f64),
    /// Why there is no rate, and what to do.
    Missing(String),
}

/// The training rate in a peer's JSON lines (`{"epoch": .., "img_per_s": ..}` per epoch): the
/// best epoch after the first, or the only one.
#[must_use]
pub fn best_rate(stdout: &str) -> Option<f64> {
    let rates: Vec<f64> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok())
        .filter_map(|v| v.get("img_per_s")?.as_f64())
        .filter(|r| r.is_finite() && *r > 0.0)
        .collect();
    rates
        .iter()
        .skip(usize::from(rates.len() > 1))
        .copied()
        .reduce(f64::max)
}

/// The shape of the comparison: the same for every peer.
pub struct Shape {
    pub batch: usize,
    pub size: u32,
    pub threads: usize,
    pub images: usize,
    pub epochs: usize,
}

/// What a peer trains on: random arrays in memory (the step alone), or two image folders
/// through the tutorial's own pipeline (end to end).
enum Input<'a> {
    Random(usize),
    Folders(&'a Path, &'a Path),
}

fn run_peer(
    python: &Path,
    dir: &Path,
    peer: &Peer,
    shape: &Shape,
    input: &Input<'_>,
) -> Result<PeerResult> {
    let script = dir.join(peer.file);
    std::fs::write(&script, peer.script)
        .with_context(|| format!("writing {}", script.display()))?;
    let input: Vec<std::ffi::OsString> = match input {
        Input::Random(n) => vec!["--random".into(), n.to_string().into()],
        Input::Folders(train, val) => vec!["--folder".into(), train.into(), val.into()],
    };
    let output = std::process::Command::new(python)
        .arg(&script)
        .args(input)
        .args(["--size", &shape.size.to_string()])
        .args(["--epochs", &shape.epochs.to_string()])
        .args(["--batch", &shape.batch.to_string()])
        .args(["--threads", &shape.threads.to_string()])
        .output();
    let output = match output {
        Ok(o) => o,
        Err(e) => {
            return Ok(PeerResult::Missing(format!(
                "cannot run {}: {e}; give a Python with --python PATH",
                python.display()
            )));
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if let Some(rate) = best_rate(&stdout).filter(|_| output.status.success()) {
        return Ok(PeerResult::Rate(rate));
    }
    let missing = peer
        .modules
        .iter()
        .find(|m| stderr.contains(&format!("No module named '{m}")));
    let why = if let Some(m) = missing {
        format!(
            "{} has no `{m}`; install the peer's packages with `{} -m pip install {}`",
            python.display(),
            python.display(),
            peer.install
        )
    } else {
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        format!(
            "{} {} failed ({}){}; it needs `pip install {}`",
            python.display(),
            peer.file,
            output.status,
            if last.is_empty() {
                String::new()
            } else {
                format!(": {last}")
            },
            peer.install
        )
    };
    Ok(PeerResult::Missing(why))
}

/// Run both peers with `shape` and print the table beside convscope's `rate`.
pub fn run(python: &Path, shape: &Shape, rate: f64) -> Result<()> {
    let dir = Scratch::new("peers")?;
    let mut rows = vec![("convscope".to_string(), PeerResult::Rate(rate))];
    for peer in &PEERS {
        rows.push((
            peer.name.to_string(),
            run_peer(python, &dir.0, peer, shape, &Input::Random(shape.images))?,
        ));
    }
    out("");
    out(&format!(
        "three-way training step (random data in memory, batch {}, {}x{}, {} threads, this machine, this run):",
        shape.batch, shape.size, shape.size, shape.threads
    ));
    for line in table(&rows) {
        out(&line);
    }
    Ok(())
}

/// The tutorial's own pipeline end to end (`ImageDataGenerator` with its augmentation,
/// `flow_from_directory`, validation and a `ModelCheckpoint` every epoch, `model.fit`) on the
/// same training and validation images as convscope's end-to-end run, beside convscope's rate
/// `ours` (img/s of its best epoch after the first, timed the same way).
pub fn end_to_end(python: &Path, shape: &Shape, train: &Path, val: &Path, ours: f64) -> Result<()> {
    let dir = Scratch::new("peers-e2e")?;
    let keras = run_peer(
        python,
        &dir.0,
        &PEERS[0],
        shape,
        &Input::Folders(train, val),
    )?;
    out("");
    out(&format!(
        "end to end, convscope against the tutorial's own Keras pipeline (the same images, batch {}, {}x{}, {} threads, {} epochs, best epoch after the first, this run):",
        shape.batch, shape.size, shape.size, shape.threads, shape.epochs
    ));
    let rows = vec![
        ("convscope train".to_string(), PeerResult::Rate(ours)),
        ("Keras ImageDataGenerator + fit".to_string(), keras),
    ];
    for line in table(&rows) {
        out(&line);
    }
    Ok(())
}

/// The table's lines: img/s of each, and convscope's rate over each.
#[must_use]
pub fn table(rows: &[(String, PeerResult)]) -> Vec<String> {
    let ours = match rows.first() {
        Some((_, PeerResult::Rate(r))) => *r,
        _ => f64::NAN,
    };
    // The names' column as wide as the longest.
    let w = rows
        .iter()
        .map(|(n, _)| n.chars().count())
        .max()
        .unwrap_or(0)
        .max(18);
    let mut lines = vec![format!(
        "  {:<w$} {:>9}  {:>14}",
        "", "img/s", "convscope / it"
    )];
    for (name, result) in rows {
        lines.push(match result {
            PeerResult::Rate(r) => format!("  {name:<w$} {r:>9.1}  {:>13.2}x", ours / r),
            PeerResult::Missing(why) => format!("  {name:<w$} {:>9}  {:>14}  ({why})", "-", "-"),
        });
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_best_epoch_after_the_first_counts() {
        let text = "{\"epoch\": 1, \"img_per_s\": 300.0}\nnoise\n{\"epoch\": 2, \"img_per_s\": 180.5}\n{\"epoch\": 3, \"img_per_s\": 190.0}\n";
        assert_eq!(best_rate(text), Some(190.0));
        assert_eq!(best_rate("{\"epoch\": 1, \"img_per_s\": 42.0}"), Some(42.0));
        assert_eq!(best_rate("Traceback\n"), None);
    }

    #[test]
    fn the_table_divides_convscope_by_each() {
        let rows = [
            ("convscope".to_string(), PeerResult::Rate(200.0)),
            ("TensorFlow/Keras".to_string(), PeerResult::Rate(160.0)),
            (
                "PyTorch".to_string(),
                PeerResult::Missing("no torch".into()),
            ),
        ];
        let lines = table(&rows);
        assert!(lines[1].ends_with("1.00x"), "{lines:?}");
        assert!(
            lines[2].contains("160.0") && lines[2].ends_with("1.25x"),
            "{lines:?}"
        );
        assert!(lines[3].contains("(no torch)"), "{lines:?}");
    }

    #[test]
    fn a_long_name_widens_the_column_and_the_rates_stay_aligned() {
        let rows = [
            ("convscope train".to_string(), PeerResult::Rate(195.1)),
            (
                "Keras ImageDataGenerator + fit".to_string(),
                PeerResult::Rate(162.1),
            ),
        ];
        let lines = table(&rows);
        let end = |line: &str, s: &str| line.find(s).map(|i| i + s.len());
        let header = end(&lines[0], "img/s");
        assert!(header.is_some(), "{lines:?}");
        assert_eq!(end(&lines[1], "195.1"), header, "{lines:?}");
        assert_eq!(end(&lines[2], "162.1"), header, "{lines:?}");
    }
}
