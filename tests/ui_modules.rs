//! The UI's modules import one way: no two of `src/ui`'s modules import each other, directly or
//! through others (see the order in `src/ui.rs`'s documentation). Read from the sources.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The sibling modules of `src/ui` that `text` (a file of module `of`, `depth` levels below
/// `src/ui`) names through `crate::ui::`, or through `super::` as many times as `depth`.
fn named(text: &str, depth: usize, siblings: &BTreeSet<String>) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let prefixes = ["crate::ui::".to_string(), "super::".repeat(depth)];
    let mut found = BTreeSet::new();
    for prefix in &prefixes {
        for (i, _) in code.match_indices(prefix.as_str()) {
            // `super::super::x` is not `super::x` seen one level down.
            if prefix.starts_with("super") && code[..i].ends_with("super::") {
                continue;
            }
            let rest = &code[i + prefix.len()..];
            let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                group.split(',').map(str::trim).collect()
            } else {
                vec![rest]
            };
            for n in names {
                let n: String = n
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if siblings.contains(&n) {
                    found.insert(n);
                }
            }
        }
    }
    found
}

fn files(dir: &Path, out: &mut Vec<(std::path::PathBuf, usize)>, depth: usize) {
    for entry in std::fs::read_dir(dir).expect("read src/ui") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files(&path, out, depth + 1);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((path, depth));
        }
    }
}

#[test]
fn ui_modules_form_no_import_loop() {
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ui");
    let mut all = Vec::new();
    files(&ui, &mut all, 0);
    let sibling = |p: &Path| -> String {
        let rel = p.strip_prefix(&ui).expect("under src/ui");
        let first = rel.components().next().expect("a file");
        let first = first.as_os_str().to_string_lossy();
        first.trim_end_matches(".rs").to_string()
    };
    let siblings: BTreeSet<String> = all.iter().map(|(p, _)| sibling(p)).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, depth) in &all {
        let from = sibling(path);
        let text = std::fs::read_to_string(path).expect("read");
        let to = named(&text, depth + 1, &siblings);
        edges
            .entry(from.clone())
            .or_default()
            .extend(to.into_iter().filter(|t| *t != from));
    }
    assert!(
        edges["state"].contains("keys"),
        "the reader finds imports: {edges:?}"
    );
    // A module that reaches itself through its imports is in a loop.
    for start in edges.keys() {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<(String, Vec<String>)> = vec![(start.clone(), vec![start.clone()])];
        while let Some((m, path)) = todo.pop() {
            for next in edges.get(&m).into_iter().flatten() {
                assert!(
                    next != start,
                    "src/ui modules import each other: {} -> {next}",
                    path.join(" -> ")
                );
                if seen.insert(next.clone()) {
                    let mut p = path.clone();
                    p.push(next.clone());
                    todo.push((next.clone(), p));
                }
            }
        }
    }
}
