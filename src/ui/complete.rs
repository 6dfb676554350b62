//! Tab completion of the probe path (`o`), as a shell does it: one match is completed (a folder
//! gets its `/`), several are completed as far as they agree and listed.

use std::ffi::OsString;
use std::path::PathBuf;

/// The line after Tab, and the names that still match when more than one does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub line: String,
    pub matches: Vec<String>,
}

/// A path as typed, with a leading `~` read as the home folder (`~user` is left alone).
#[must_use]
pub fn expand_home(path: &str, home: Option<OsString>) -> PathBuf {
    match (path.strip_prefix('~'), home) {
        (Some(""), Some(home)) => PathBuf::from(home),
        (Some(rest), Some(home)) if rest.starts_with('/') => {
            PathBuf::from(home).join(rest.trim_start_matches('/'))
        }
        _ => PathBuf::from(path),
    }
}

/// Complete the last component of `line` from what its folder holds. Hidden entries only
/// match a prefix that starts with a dot. Folders are listed with a trailing `/`.
#[must_use]
pub fn complete(line: &str, home: Option<OsString>) -> Completion {
    let (folder, prefix) = match line.rfind('/') {
        Some(i) => line.split_at(i + 1),
        None if line == "~" => return complete("~/", home),
        None => ("", line),
    };
    let dir = if folder.is_empty() {
        PathBuf::from(".")
    } else {
        expand_home(folder, home)
    };
    // A folder that cannot be read (missing, not ours) completes nothing, as in a shell.
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::debug!("completing {}: {e}", dir.display());
            return Completion {
                line: line.to_string(),
                matches: Vec::new(),
            };
        }
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            if !name.starts_with(prefix) || (name.starts_with('.') && !prefix.starts_with('.')) {
                return None;
            }
            // A link to a folder is a folder here, as for the shell.
            let is_dir = std::fs::metadata(e.path()).is_ok_and(|m| m.is_dir());
            Some(if is_dir { name + "/" } else { name })
        })
        .collect();
    names.sort();
    match names.as_slice() {
        [] => Completion {
            line: line.to_string(),
            matches: Vec::new(),
        },
        [one] => Completion {
            line: format!("{folder}{one}"),
            matches: Vec::new(),
        },
        [first, rest @ ..] => {
            let common = rest.iter().fold(first.as_str(), |acc, n| {
                let len = acc
                    .char_indices()
                    .zip(n.chars())
                    .take_while(|((_, a), b)| a == b)
                    .last()
                    .map_or(0, |((i, a), _)| i + a.len_utf8());
                &acc[..len]
            });
            Completion {
                line: format!("{folder}{common}"),
                matches: names.clone(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leading_tilde_is_the_home_folder() {
        let home = || Some(OsString::from("/home/u"));
        assert_eq!(
            expand_home("~/a/b.png", home()),
            PathBuf::from("/home/u/a/b.png")
        );
        assert_eq!(expand_home("~", home()), PathBuf::from("/home/u"));
        // Not a home: another user's, a tilde inside, no HOME set.
        assert_eq!(
            expand_home("~bob/x.png", home()),
            PathBuf::from("~bob/x.png")
        );
        assert_eq!(expand_home("a/~/x.png", home()), PathBuf::from("a/~/x.png"));
        assert_eq!(expand_home("~/x.png", None), PathBuf::from("~/x.png"));
    }

    #[test]
    fn tab_completes_one_match_and_lists_several() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        std::fs::create_dir_all(root.join("5-sandal")).expect("dir");
        std::fs::create_dir_all(root.join("6-shirt")).expect("dir");
        std::fs::write(root.join("shoe_001.png"), b"x").expect("file");
        std::fs::write(root.join("shoe_002.png"), b"x").expect("file");
        std::fs::write(root.join(".hidden.png"), b"x").expect("file");
        let r = root.display().to_string();
        let at = |s: &str| complete(&format!("{r}/{s}"), None);
        // One folder: completed with its slash.
        assert_eq!(at("5").line, format!("{r}/5-sandal/"));
        assert!(at("5").matches.is_empty());
        // Several: as far as they agree, and listed (folders with their slash, sorted).
        let c = at("sho");
        assert_eq!(c.line, format!("{r}/shoe_00"));
        assert_eq!(c.matches, ["shoe_001.png", "shoe_002.png"]);
        let c = at("");
        assert_eq!(c.line, format!("{r}/"));
        assert_eq!(
            c.matches,
            ["5-sandal/", "6-shirt/", "shoe_001.png", "shoe_002.png"],
            "hidden files only for a dot"
        );
        assert_eq!(at(".h").line, format!("{r}/.hidden.png"));
        // Nothing matches, or no such folder: the line stays.
        assert_eq!(at("zzz").line, format!("{r}/zzz"));
        assert_eq!(at("nope/x").line, format!("{r}/nope/x"));
        // `~` is the home folder, and stays `~` in the line.
        let home = Some(OsString::from(root));
        assert_eq!(complete("~/6", home.clone()).line, "~/6-shirt/");
        assert_eq!(complete("~", home).line, "~/");
    }
}
