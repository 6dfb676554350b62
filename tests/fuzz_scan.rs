//! The folder scan on random trees of files, folders, links and odd names never panics, and
//! what it returns is well formed.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
use std::path::{Path, PathBuf};

use convscope::data::{has_image_extension, scan};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Kind {
    File,
    Dir,
    /// A link to the folder the entry is in (a loop).
    LinkToParent,
    /// A link to the scan root (a longer loop).
    LinkToRoot,
    LinkToNothing,
}

fn name() -> impl Strategy<Value = OsString> {
    prop_oneof![
        "[a-c]{1,2}".prop_map(OsString::from),
        "[a-c]{1,2}\\.(png|JPG|jpeg|txt|gif|webp|bmp)".prop_map(OsString::from),
        "\\.[a-c]{0,2}(\\.png)?".prop_map(OsString::from),
        Just(OsString::from("ü.png")),
        // Not UTF-8.
        proptest::collection::vec(prop_oneof![Just(b'a'), Just(0xff_u8), Just(0xe9_u8)], 1..4)
            .prop_map(|mut b| {
                b.extend_from_slice(b".png");
                OsString::from_vec(b)
            }),
        proptest::collection::vec(prop_oneof![Just(b'z'), Just(0xfe_u8)], 1..3)
            .prop_map(OsString::from_vec),
    ]
}

fn entry() -> impl Strategy<Value = (Vec<OsString>, Kind)> {
    (
        proptest::collection::vec(name(), 1..4),
        prop_oneof![
            4 => Just(Kind::File),
            3 => Just(Kind::Dir),
            1 => Just(Kind::LinkToParent),
            1 => Just(Kind::LinkToRoot),
            1 => Just(Kind::LinkToNothing),
        ],
    )
}

/// Create the entries under `root`; parents are made as folders, clashes are skipped.
fn build(root: &Path, entries: &[(Vec<OsString>, Kind)]) {
    for (parts, kind) in entries {
        let path: PathBuf = parts.iter().fold(root.to_path_buf(), |p, n| p.join(n));
        let Some(parent) = path.parent() else {
            continue;
        };
        if std::fs::create_dir_all(parent).is_err() || path.symlink_metadata().is_ok() {
            continue;
        }
        let _ = match kind {
            Kind::File => std::fs::write(&path, b"not really an image"),
            Kind::Dir => std::fs::create_dir(&path),
            Kind::LinkToParent => std::os::unix::fs::symlink(parent, &path),
            Kind::LinkToRoot => std::os::unix::fs::symlink(root, &path),
            Kind::LinkToNothing => std::os::unix::fs::symlink(root.join("missing"), &path),
        };
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5ca9),
        ..ProptestConfig::default()
    })]

    #[test]
    fn scan_of_any_tree_never_panics_and_is_well_formed(
        entries in proptest::collection::vec(entry(), 0..24),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("data");
        std::fs::create_dir(&root).expect("mkdir");
        build(&root, &entries);
        match scan(&root) {
            Ok(s) => {
                prop_assert!(s.classes.len() >= 2);
                // Class names in sorted order (sorted by the folder name's bytes; names that
                // are not UTF-8 are shown lossily, so compare lossily too).
                let mut sorted = s.classes.clone();
                sorted.sort();
                prop_assert_eq!(&sorted, &s.classes);
                let mut last: Option<(usize, &Path)> = None;
                for sample in &s.samples {
                    prop_assert!(sample.label < s.classes.len());
                    prop_assert!(has_image_extension(&sample.path));
                    prop_assert!(sample.path.is_file(), "{}", sample.path.display());
                    let rel = sample.path.strip_prefix(&root).expect("under the root");
                    // Nothing hidden, and the first component is the class folder.
                    prop_assert!(rel.components().all(|c| c.as_os_str().as_bytes()[0] != b'.'));
                    if let Some((label, path)) = last {
                        prop_assert!((label, path) < (sample.label, sample.path.as_path()));
                    }
                    last = Some((sample.label, &sample.path));
                }
                for label in 0..s.classes.len() {
                    prop_assert!(s.samples.iter().any(|x| x.label == label), "class {} has images", label);
                }
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(
                    msg.contains(&root.display().to_string()),
                    "names the folder: {}",
                    msg
                );
            }
        }
    }
}

#[test]
fn scan_of_loops_only_finishes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    for class in ["a", "b"] {
        std::fs::create_dir(root.join(class)).expect("mkdir");
        std::os::unix::fs::symlink(root, root.join(class).join("up")).expect("link");
        std::os::unix::fs::symlink(root.join(class), root.join(class).join("self")).expect("link");
        std::fs::write(root.join(class).join("x.png"), b"x").expect("write");
    }
    let s = scan(root).expect("scan");
    assert_eq!(s.classes, ["a", "b"]);
    assert_eq!(s.samples.len(), 2);
    let name = std::ffi::OsStr::from_bytes(b"c\xff");
    std::fs::create_dir(root.join(name)).expect("mkdir");
    std::fs::write(root.join(name).join("y.png"), b"y").expect("write");
    assert_eq!(scan(root).expect("scan").classes, ["a", "b", "c\u{fffd}"]);
}
