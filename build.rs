//! Puts the git commit and the enabled device features into `convscope --version`. Builds
//! without git too (a source tarball): the commit is then "unknown".
#![allow(clippy::print_stdout)] // cargo reads its instructions from a build script's stdout

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    let mut features = vec!["cpu"];
    for (var, name) in [
        ("CARGO_FEATURE_WGPU", "wgpu"),
        ("CARGO_FEATURE_CUDA", "cuda"),
    ] {
        if std::env::var_os(var).is_some() {
            features.push(name);
        }
    }
    let commit = git(&["rev-parse", "--short=12", "HEAD"]);
    // Build again when HEAD moves (a commit, a checkout); no such files outside a checkout.
    if let Some(dir) = git(&["rev-parse", "--git-dir"]).map(PathBuf::from) {
        let mut watch = vec![dir.join("HEAD"), dir.join("packed-refs")];
        if let Some(head_ref) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watch.push(dir.join(&head_ref));
            if let Some(common) = git(&["rev-parse", "--git-common-dir"]).map(PathBuf::from) {
                watch.push(common.join(head_ref));
            }
        }
        for path in watch.into_iter().filter(|p| p.exists()) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!(
        "cargo:rustc-env=CONVSCOPE_LONG_VERSION={} (commit {}; features: {})",
        std::env::var("CARGO_PKG_VERSION").unwrap_or_default(),
        commit
            .as_deref()
            .unwrap_or("unknown, not built from a git checkout"),
        features.join(", ")
    );
}
