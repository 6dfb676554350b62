//! Keras `flow_from_directory` folder scan: one sub-folder per class, sorted names.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

use super::{DataError, Sample};

/// File extensions accepted as images (compared case-insensitively), as in Keras (which reads
/// TIFF too).
pub const IMAGE_EXTENSIONS: [&str; 8] = ["jpg", "jpeg", "png", "bmp", "gif", "webp", "tif", "tiff"];

/// Image formats that convscope does not read: such files are listed as skipped, with what to
/// do, not left out unseen (a folder of phone photos in HEIC would otherwise look empty).
pub const UNREAD_EXTENSIONS: [&str; 14] = [
    "heic", "heif", "avif", "jxl", "jp2", "j2k", "jpx", "psd", "dng", "cr2", "cr3", "nef", "arw",
    "orf",
];

/// The result of scanning an image folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Class names in index order (sorted folder names).
    pub classes: Vec<String>,
    /// Every image file, grouped by class, sorted by path inside each class.
    pub samples: Vec<Sample>,
    /// Entries quietly left out: hidden names, other extensions, symlinked folders, loose files.
    pub ignored: usize,
}

fn is_hidden(name: &OsStr) -> bool {
    name.as_encoded_bytes().first() == Some(&b'.')
}

/// Whether a file name has an accepted image extension.
#[must_use]
pub fn has_image_extension(path: &Path) -> bool {
    path.extension().is_some_and(|ext| {
        IMAGE_EXTENSIONS
            .iter()
            .any(|e| ext.as_encoded_bytes().eq_ignore_ascii_case(e.as_bytes()))
    })
}

/// The format of an image file convscope does not read, by its extension (`HEIC`), if it is one.
#[must_use]
pub fn unread_format(path: &Path) -> Option<String> {
    let ext = path.extension()?;
    UNREAD_EXTENSIONS
        .iter()
        .any(|e| ext.as_encoded_bytes().eq_ignore_ascii_case(e.as_bytes()))
        .then(|| ext.to_string_lossy().to_ascii_uppercase())
}

/// Folder names that mean a split of a dataset, not a class.
const SPLIT_NAMES: &[&str] = &[
    "train",
    "training",
    "val",
    "valid",
    "validation",
    "test",
    "testing",
];

/// A warning when the class folders of `root` look like a dataset's splits (`train/`, `val/`,
/// `test/`): training would learn "train vs val", which is rarely what anyone means.
#[must_use]
pub fn split_folders_warning(root: &Path, classes: &[String]) -> Option<String> {
    let split = |c: &String| SPLIT_NAMES.contains(&c.to_ascii_lowercase().as_str());
    let splits: Vec<&String> = classes.iter().filter(|c| split(c)).collect();
    if splits.len() < 2 {
        return None;
    }
    let named = |want: &[&str]| {
        classes
            .iter()
            .find(|c| want.contains(&c.to_ascii_lowercase().as_str()))
            .map(|c| root.join(c))
    };
    let train = named(&["train", "training"]);
    let val = named(&["val", "valid", "validation"]).or_else(|| named(&["test", "testing"]));
    let hint = match (train, val) {
        (Some(t), Some(v)) => format!(
            "; if they are its splits, train on one with the other for validation: convscope train {} --val {}",
            t.display(),
            v.display()
        ),
        _ => String::new(),
    };
    let names: Vec<&str> = splits.iter().map(|c| c.as_str()).collect();
    Some(format!(
        "the class folders of {} include {}: they are trained as classes, which is rarely meant{hint}",
        root.display(),
        names.join(", ")
    ))
}

/// Scan a Keras `flow_from_directory` folder: one sub-folder per class, class index = sorted name order.
pub fn scan(root: &Path) -> Result<Scan, DataError> {
    let folder_err = |source| DataError::Folder {
        path: root.to_path_buf(),
        source,
    };
    let meta = fs::metadata(root).map_err(folder_err)?;
    if !meta.is_dir() {
        return Err(DataError::NotAFolder {
            path: root.to_path_buf(),
        });
    }
    let mut ignored = 0;
    let mut class_dirs: Vec<PathBuf> = Vec::new();
    for entry in fs::read_dir(root).map_err(folder_err)? {
        let entry = entry.map_err(folder_err)?;
        let name = entry.file_name();
        // Keras uses os.path.isdir here, which follows a symlinked class folder.
        if !is_hidden(&name) && entry.path().is_dir() {
            class_dirs.push(entry.path());
        } else {
            ignored += 1;
        }
    }
    class_dirs.sort();
    if class_dirs.len() < 2 {
        return Err(DataError::TooFewClasses {
            path: root.to_path_buf(),
            found: class_dirs.len(),
        });
    }
    let mut classes = Vec::with_capacity(class_dirs.len());
    let mut samples = Vec::new();
    for (label, dir) in class_dirs.iter().enumerate() {
        let mut files = Vec::new();
        walk(dir, &mut files, &mut ignored).map_err(|source| DataError::Folder {
            path: dir.clone(),
            source,
        })?;
        if files.is_empty() {
            return Err(DataError::EmptyClass {
                path: dir.clone(),
                detail: "no file with an image extension".into(),
            });
        }
        files.sort();
        samples.extend(files.into_iter().map(|path| Sample { path, label }));
        let name = dir.file_name().unwrap_or_default();
        classes.push(name.to_string_lossy().into_owned());
    }
    Ok(Scan {
        classes,
        samples,
        ignored,
    })
}

// Recursive, never following a symlinked folder (like os.walk(followlinks=False)), so a
// symlink loop cannot hang; a symlink to a file is listed like a file.
fn walk(dir: &Path, files: &mut Vec<PathBuf>, ignored: &mut usize) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if is_hidden(&entry.file_name()) {
            *ignored += 1;
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            // A sub-folder that cannot be listed is a problem of that folder alone.
            if walk(&path, files, ignored).is_err() {
                *ignored += 1;
            }
        } else if (has_image_extension(&path) || unread_format(&path).is_some())
            && (kind.is_file() || path.is_file())
        {
            files.push(path);
        } else {
            *ignored += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_folders_as_classes_are_warned_about_with_the_val_command() {
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        let root = Path::new("data");
        let w = split_folders_warning(root, &names(&["test", "train", "val"])).expect("warned");
        assert!(w.contains("include test, train, val"), "{w}");
        assert!(
            w.contains("convscope train data/train --val data/val"),
            "{w}"
        );
        let w = split_folders_warning(root, &names(&["Testing", "Training"])).expect("warned");
        assert!(
            w.contains("convscope train data/Training --val data/Testing"),
            "{w}"
        );
        assert!(split_folders_warning(root, &names(&["cats", "dogs"])).is_none());
        // One split-like name among real classes ("test" tubes, say) is left alone.
        assert!(split_folders_warning(root, &names(&["cats", "dogs", "test"])).is_none());
    }

    #[test]
    fn extensions_are_case_insensitive() {
        assert!(has_image_extension(Path::new("a/B.JPG")));
        assert!(has_image_extension(Path::new("a/b.WebP")));
        assert!(!has_image_extension(Path::new("a/b.txt")));
        assert!(!has_image_extension(Path::new("a/jpg")));
    }

    #[test]
    fn one_class_is_an_error_naming_the_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir(dir.path().join("cats")).expect("mkdir");
        fs::write(dir.path().join("cats/a.png"), b"x").expect("write");
        let err = scan(dir.path()).expect_err("one class").to_string();
        assert!(err.contains("found 1 class folder in"), "{err}");
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
        assert!(err.contains("at least two"), "{err}");
    }

    #[test]
    fn missing_folder_and_empty_class_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope");
        let err = scan(&missing).expect_err("missing").to_string();
        assert!(err.contains(&missing.display().to_string()), "{err}");
        fs::create_dir_all(dir.path().join("a")).expect("mkdir");
        fs::create_dir_all(dir.path().join("b")).expect("mkdir");
        fs::write(dir.path().join("a/x.png"), b"x").expect("write");
        fs::write(dir.path().join("b/notes.txt"), b"x").expect("write");
        let err = scan(dir.path()).expect_err("empty class").to_string();
        assert!(err.contains("has no readable image"), "{err}");
        assert!(
            err.contains(&dir.path().join("b").display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn classes_sorted_recursive_and_ignored_counted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = dir.path();
        for p in ["dogs/sub/deep", "cats", ".hidden_class", "cats/.cache"] {
            fs::create_dir_all(r.join(p)).expect("mkdir");
        }
        for f in [
            "dogs/b.JPG",
            "dogs/sub/deep/a.png",
            "cats/z.webp",
            "cats/a.jpeg",
            "cats/readme.txt",
            "cats/.DS_Store",
            "cats/.cache/c.png",
            ".hidden_class/x.png",
            "loose.png",
        ] {
            fs::write(r.join(f), b"x").expect("write");
        }
        let s = scan(r).expect("scan");
        assert_eq!(s.classes, vec!["cats", "dogs"]);
        let names: Vec<_> = s
            .samples
            .iter()
            .map(|s| {
                (
                    s.path.strip_prefix(r).expect("under root").to_path_buf(),
                    s.label,
                )
            })
            .collect();
        assert_eq!(
            names,
            vec![
                (PathBuf::from("cats/a.jpeg"), 0),
                (PathBuf::from("cats/z.webp"), 0),
                (PathBuf::from("dogs/b.JPG"), 1),
                (PathBuf::from("dogs/sub/deep/a.png"), 1),
            ]
        );
        // .hidden_class, loose.png, readme.txt, .DS_Store, .cache
        assert_eq!(s.ignored, 5);
    }
}
