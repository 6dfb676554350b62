//! Nothing from a data folder or a run directory is ever executed, and no config key can make
//! convscope write outside its run directory.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use common::{bin, synthetic};
use convscope::config::{Config, DEFAULT_TOML};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every file and folder under `dir`, relative to it.
fn tree(dir: &Path) -> BTreeSet<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<PathBuf>) {
        for e in fs::read_dir(dir).expect("ls").flatten() {
            let p = e.path();
            out.insert(p.strip_prefix(root).expect("under").to_path_buf());
            if e.file_type().expect("type").is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn the_source_never_starts_a_process_or_loads_code() {
    // Static check: the only ways Rust runs other code. (Tests may use them; src/ may not,
    // except `--detach` and the allocator tuning starting this same binary again, and a fixed
    // question to tmux about the terminal's colours.)
    let mut offenders = Vec::new();
    let mut stack = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).expect("ls").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = fs::read_to_string(&p).expect("read");
                // The one process convscope starts is itself: `train --detach` re-runs the
                // current executable under `setsid`, never anything named by data or config.
                let text = text
                    .replace(
                        "std::process::Command::new(\"setsid\")\n        .arg(&exe)",
                        "<detach: setsid + current_exe>",
                    )
                    .replace(
                        "std::process::Command::new(exe)\n            .args(std::env::args_os().skip(1))",
                        "<allocator: exec current_exe, same args>",
                    )
                    // Under `ulimit -v`, one trial step of this same binary's hidden
                    // `memory-trial` subcommand (`session::memory`).
                    .replace(
                        "std::process::Command::new(exe)\n        .args([SUBCOMMAND, \"--classes\", &classes.to_string()])",
                        "<memory trial: current_exe memory-trial>",
                    )
                    // Inside tmux, the colour depth is tmux's knowledge of its client terminal:
                    // a fixed query to the tmux server this process runs under.
                    .replace(
                        "std::process::Command::new(\"tmux\")\n        .args([\"display-message\", \"-p\", \"#{client_termfeatures}\"])",
                        "<colour depth: tmux display-message -p #{client_termfeatures}>",
                    )
                    // Inside tmux, the picture protocol: fixed questions and settings to the tmux
                    // server this process runs under (`ui::graphics::detect::tmux_command`, whose
                    // callers pass constant arguments: display-message with a fixed format,
                    // allow-passthrough for the pane, and redraw hooks that signal this process).
                    .replace(
                        "std::process::Command::new(\"tmux\")\n        .args(args)",
                        "<pictures: tmux with the fixed arguments of detect.rs and redraw.rs>",
                    )
                    // `convscope bench --peers`: the Python named by `--python` (default
                    // `python3`), on the peer script the binary embeds, with numeric arguments
                    // (and with `--end-to-end`, the two image folders it linked in its scratch).
                    .replace(
                        "std::process::Command::new(python)\n        .arg(&script)",
                        "<bench --peers: the given python on the embedded peer script>",
                    );
                for needle in ["process::Command", "Command::new", "libloading", "dlopen"] {
                    if text.contains(needle) {
                        offenders.push(format!("{}: {needle}", p.display()));
                    }
                }
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:?}");
}

#[test]
fn hostile_names_and_run_files_are_never_executed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let work = tmp.path().join("work");
    fs::create_dir(&work).expect("mkdir");
    let pwned = tmp.path().join("PWNED");
    let payload = format!("$(touch {0}) `touch {0}`; touch {0}", pwned.display());
    // Class folders and image names that a shell would run.
    let data = synthetic(tmp.path(), 6, 16);
    fs::rename(data.join("blobs"), data.join("$(touch PWNED)")).expect("rename");
    fs::rename(data.join("stripes"), data.join(";touch PWNED;")).expect("rename");
    fs::copy(
        data.join(";touch PWNED;/stripes-0000.png"),
        data.join(";touch PWNED;/`touch PWNED`.png"),
    )
    .ok();
    let script = format!("#!/bin/sh\ntouch {}\n", pwned.display());
    let exec = |p: &Path| {
        use std::os::unix::fs::PermissionsExt as _;
        fs::write(p, &script).expect("write");
        fs::set_permissions(p, fs::Permissions::from_mode(0o755)).expect("chmod");
    };
    exec(&data.join("$(touch PWNED)/run.png"));
    let run = work.join("run");
    let out = bin()
        .current_dir(&work)
        .arg("train")
        .arg(&data)
        .arg("--run")
        .arg(&run)
        .args([
            "--headless",
            "--image-size",
            "16",
            "--epochs",
            "1",
            "--batch-size",
            "4",
        ])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    // Executable files in the run directory and a hostile `latest`.
    for name in ["convscope.log.sh", "checkpoints/epoch-0001/hook", "hooks"] {
        exec(&run.join(name));
    }
    fs::write(run.join("checkpoints/latest"), format!("{payload}\n")).expect("write");
    let out = bin()
        .current_dir(&work)
        .arg("resume")
        .arg(&run)
        .args(["--headless", "--epochs", "2"])
        .output()
        .expect("runs");
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("not a checkpoint name"), "{err}");
    assert!(!pwned.exists(), "something was executed");
    assert!(!work.join("PWNED").exists() && !run.join("PWNED").exists());
}

#[test]
fn latest_cannot_point_outside_the_checkpoints_folder() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 6, 16);
    let run = tmp.path().join("run");
    let out = bin()
        .arg("train")
        .arg(&data)
        .arg("--run")
        .arg(&run)
        .args([
            "--headless",
            "--image-size",
            "16",
            "--epochs",
            "1",
            "--batch-size",
            "4",
        ])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    // A complete-looking checkpoint outside, and `latest` pointing at it.
    let outside = tmp.path().join("epoch-0009");
    fs::create_dir(&outside).expect("mkdir");
    for f in ["model.bpk", "optimizer.bpk", "state.json"] {
        fs::copy(run.join("checkpoints/epoch-0001").join(f), outside.join(f)).expect("copy");
    }
    fs::write(run.join("checkpoints/latest"), "../../epoch-0009\n").expect("write");
    let out = bin()
        .arg("resume")
        .arg(&run)
        .args(["--headless", "--epochs", "2"])
        .output()
        .expect("runs");
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("checkpoint ../../epoch-0009 is incomplete or damaged (not a checkpoint name); using the newest complete one, epoch-0001"),
        "{err}"
    );
}

/// Every string value in a TOML document, with its dotted key.
fn string_leaves(v: &toml::Value, key: &str, out: &mut Vec<String>) {
    match v {
        toml::Value::String(_) => out.push(key.to_string()),
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if key.is_empty() {
                    k.clone()
                } else {
                    format!("{key}.{k}")
                };
                string_leaves(v, &key, out);
            }
        }
        toml::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                string_leaves(v, &format!("{key}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn no_config_key_takes_a_path() {
    // The resolved config has no path-like key: every string is a closed choice or a device
    // name, so a path put there is refused before anything is written.
    let resolved: toml::Value = toml::from_str(&Config::default().to_toml()).expect("toml");
    let mut keys = Vec::new();
    string_leaves(&resolved, "", &mut keys);
    assert!(keys.iter().any(|k| k == "train.device"), "{keys:?}");
    for key in &keys {
        let mut doc = resolved.clone();
        let mut slot = &mut doc;
        for part in key.split('.') {
            let (name, index) = match part.split_once('[') {
                Some((n, i)) => (
                    n,
                    Some(i.trim_end_matches(']').parse::<usize>().expect("i")),
                ),
                None => (part, None),
            };
            slot = slot.get_mut(name).expect("key");
            if let Some(i) = index {
                slot = slot.get_mut(i).expect("index");
            }
        }
        *slot = toml::Value::String("../../escape/out.bin".into());
        let text = toml::to_string(&doc).expect("toml");
        let refused = Config::from_toml(&text, "x.toml").and_then(|c| c.validate());
        assert!(refused.is_err(), "{key} accepted a path");
    }
    // And the documented keys are the same as the resolved ones (no hidden path key).
    let documented: toml::Value = toml::from_str(DEFAULT_TOML).expect("toml");
    let mut doc_keys = Vec::new();
    string_leaves(&documented, "", &mut doc_keys);
    assert_eq!(doc_keys, keys);
}

#[test]
fn training_writes_nothing_outside_the_run_directory() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = synthetic(tmp.path(), 6, 16);
    let work = tmp.path().join("work");
    fs::create_dir(&work).expect("mkdir");
    let cfg = tmp.path().join("cfg.toml");
    fs::write(&cfg, "[train]\nkeep_checkpoints = 1\n").expect("write");
    let before = tree(tmp.path());
    let run = work.join("run");
    let out = bin()
        .current_dir(&work)
        .arg("train")
        .arg(&data)
        .arg("--config")
        .arg(&cfg)
        .arg("--run")
        .arg(&run)
        .args([
            "--headless",
            "--image-size",
            "16",
            "--epochs",
            "2",
            "--batch-size",
            "4",
        ])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let after = tree(tmp.path());
    let new: Vec<_> = after
        .difference(&before)
        .filter(|p| !p.starts_with("work/run"))
        .collect();
    assert!(new.is_empty(), "written outside the run directory: {new:?}");
    assert!(after.contains(Path::new("work/run/checkpoints/epoch-0002/model.bpk")));
}
