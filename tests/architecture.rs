//! The import rule of ARCHITECTURE.md, checked on the source tree.
//!
//! Every `.rs` file under `src/` is a module. A reference from module A to module B (a `use`
//! path or an inline `crate::`/`super::`/child path) is an edge between the two children of
//! their closest common ancestor: `crate::ui::state` using `crate::ui::layout` is the edge
//! `state -> layout` among the children of `ui`; `crate::ui::app` using `crate::run::control`
//! is `ui -> run` among the crate's top-level modules. A child using its own ancestors, or a
//! parent using its children, is not an edge (a parent owns its children).
//!
//! The rule: among the children of every module the edges form no cycle (no two modules import
//! each other, directly or through others), and the crate's top-level modules import only the
//! ones listed before them in [`LAYERS`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crate's top-level modules, bottom first. A module may import only modules listed
/// before it; a new top-level module must be added here, in its place.
const LAYERS: &[&str] = &[
    "yesno",
    "allocator",
    "logging",
    "signals",
    "config",
    "device",
    "events",
    "data",
    "model",
    "viz",
    "run",
    "analysis",
    "infer",
    "train",
    "import",
    "ui",
    "session",
    "cli",
    "commands",
];

/// One module per file: `src/ui/state/input.rs` is `["ui", "state", "input"]`.
fn modules(src: &Path) -> BTreeMap<Vec<String>, String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read src") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(src, &mut files);
    files
        .into_iter()
        .map(|file| {
            let rel = file
                .strip_prefix(src)
                .expect("under src")
                .with_extension("");
            let mut path: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if path == ["lib"] || path == ["main"] {
                path.clear();
            }
            let text = std::fs::read_to_string(&file).expect("read source file");
            (path, strip_comments_and_strings(&text))
        })
        .collect()
}

/// The source without comments and string literals, so prose and messages are not paths.
fn strip_comments_and_strings(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if b[i] == b'"' && (i == 0 || b[i - 1] != b'\'') {
            // A raw string's `r#"` prefix is kept as text; its body is skipped up to `"#`.
            let hashes = b[..i].iter().rev().take_while(|&&c| c == b'#').count();
            let raw = i > hashes && b[i - hashes - 1] == b'r';
            i += 1;
            while i < b.len() {
                if !raw && b[i] == b'\\' {
                    i += 2;
                } else if b[i] == b'"'
                    && (!raw || b[i + 1..].iter().take(hashes).all(|&c| c == b'#'))
                {
                    i += 1 + if raw { hashes } else { 0 };
                    break;
                } else {
                    i += 1;
                }
            }
            out.push_str("\"\"");
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// Every path the text names: `use` trees expanded (`use a::{b, c::d}` names `a::b` and
/// `a::c::d`), and inline paths made of `::`-joined identifiers.
fn paths(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("use ") {
        let before_ok = at == 0
            || !rest.as_bytes()[at - 1].is_ascii_alphanumeric() && rest.as_bytes()[at - 1] != b'_';
        let after = &rest[at + 4..];
        if let (true, Some(end)) = (before_ok, after.find(';')) {
            expand(&after[..end], &mut Vec::new(), &mut out);
            rest = &after[end..];
        } else {
            rest = after;
        }
    }
    // Inline paths: runs of identifiers joined by `::`.
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let ident = |j: usize| bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_';
        if ident(i) && (i == 0 || !ident(i - 1) && bytes[i - 1] != b':') {
            let start = i;
            while i < bytes.len() && (ident(i) || bytes[i..].starts_with(b"::")) {
                i += if bytes[i] == b':' { 2 } else { 1 };
            }
            let path: Vec<String> = text[start..i]
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if path.len() > 1 {
                out.push(path);
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Expand one `use` tree (the text between `use` and `;`) into full paths.
fn expand(tree: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head: Vec<String> = tree[..open]
            .split("::")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let close = tree.rfind('}').unwrap_or(tree.len());
        let inner = &tree[open + 1..close];
        let depth = prefix.len();
        prefix.extend(head);
        let mut level = 0;
        let mut start = 0;
        for (k, c) in inner.char_indices() {
            match c {
                '{' => level += 1,
                '}' => level -= 1,
                ',' if level == 0 => {
                    expand(&inner[start..k], prefix, out);
                    start = k + 1;
                }
                _ => {}
            }
        }
        expand(&inner[start..], prefix, out);
        prefix.truncate(depth);
    } else {
        let tree = tree.split(" as ").next().unwrap_or(tree);
        let mut path = prefix.clone();
        path.extend(
            tree.split("::")
                .map(str::trim)
                .filter(|s| !s.is_empty() && *s != "self" && *s != "*")
                .map(str::to_owned),
        );
        if !path.is_empty() {
            out.push(path);
        }
    }
}

/// The module a path names, resolved from module `from`: the longest prefix that is a module.
fn resolve(
    from: &[String],
    path: &[String],
    mods: &BTreeMap<Vec<String>, String>,
) -> Option<Vec<String>> {
    let mut base: Vec<String>;
    let mut rest = path;
    match path.first().map(String::as_str) {
        Some("crate") => {
            base = Vec::new();
            rest = &path[1..];
        }
        Some("super") => {
            base = from.to_vec();
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        Some("self") => {
            base = from.to_vec();
            rest = &path[1..];
        }
        Some(first) => {
            // A child module of `from` named bare (`state::AppState` inside `ui`).
            let mut child = from.to_vec();
            child.push(first.to_owned());
            if !mods.contains_key(&child) {
                return None;
            }
            base = from.to_vec();
        }
        None => return None,
    }
    let mut best = None;
    let mut candidate = base.clone();
    if mods.contains_key(&candidate) {
        best = Some(candidate.clone());
    }
    for part in rest {
        candidate.push(part.clone());
        if mods.contains_key(&candidate) {
            best = Some(candidate.clone());
        } else {
            break;
        }
    }
    best
}

type Groups = BTreeMap<Vec<String>, BTreeMap<String, BTreeSet<String>>>;

/// Edges among siblings, grouped by their parent module.
fn sibling_edges(mods: &BTreeMap<Vec<String>, String>) -> Groups {
    let mut groups: Groups = BTreeMap::new();
    for (from, text) in mods {
        for path in paths(text) {
            let Some(to) = resolve(from, &path, mods) else {
                continue;
            };
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common < from.len() && common < to.len() {
                groups
                    .entry(from[..common].to_vec())
                    .or_default()
                    .entry(from[common].clone())
                    .or_default()
                    .insert(to[common].clone());
            }
        }
    }
    groups
}

/// A cycle in the graph, if there is one, as the modules along it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_owned(), 1);
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next.as_str()) {
                Some(1) => {
                    let at = stack.iter().position(|s| s == next).unwrap_or(0);
                    let mut cycle = stack[at..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(next, graph, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(node.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if !state.contains_key(node.as_str())
            && let Some(c) = visit(node, graph, &mut state, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_two_modules_import_each_other() {
    let mods = modules(&src());
    let mut loops = Vec::new();
    for (parent, graph) in sibling_edges(&mods) {
        if let Some(cycle) = find_cycle(&graph) {
            let parent = if parent.is_empty() {
                "crate".to_owned()
            } else {
                parent.join("::")
            };
            loops.push(format!("in {parent}: {}", cycle.join(" -> ")));
        }
    }
    assert!(loops.is_empty(), "import loops:\n{}", loops.join("\n"));
}

#[test]
fn top_level_modules_import_only_layers_below() {
    let mods = modules(&src());
    let groups = sibling_edges(&mods);
    let top: BTreeSet<&String> = mods
        .keys()
        .filter(|m| m.len() == 1)
        .map(|m| &m[0])
        .collect();
    let unlisted: Vec<&&String> = top
        .iter()
        .filter(|m| !LAYERS.contains(&m.as_str()))
        .collect();
    assert!(
        unlisted.is_empty(),
        "top-level modules missing from LAYERS (add each in its place): {unlisted:?}"
    );
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut upward = Vec::new();
    for (from, tos) in groups.get(&Vec::new()).into_iter().flatten() {
        for to in tos {
            if let (Some(a), Some(b)) = (rank(from), rank(to))
                && b >= a
            {
                upward.push(format!("{from} -> {to}"));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports from a layer above (see LAYERS in tests/architecture.rs):\n{}",
        upward.join("\n")
    );
}

/// The checker itself: a loop planted in a scratch tree is found, with its modules named.
#[test]
fn a_new_import_loop_is_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path();
    std::fs::create_dir_all(src.join("ui")).expect("mkdir");
    std::fs::write(src.join("lib.rs"), "pub mod ui;\npub mod run;\n").expect("write");
    std::fs::write(src.join("run.rs"), "pub fn open() {}\n").expect("write");
    std::fs::write(src.join("ui.rs"), "mod a;\nmod b;\n").expect("write");
    std::fs::write(
        src.join("ui/a.rs"),
        "use super::{b::Thing, c as _};\n// crate::ui::b in a comment is no edge\n",
    )
    .expect("write");
    std::fs::write(
        src.join("ui/b.rs"),
        "pub struct Thing;\nfn f() { crate::ui::a::g(); crate::run::open(); }\n",
    )
    .expect("write");
    let mods = modules(src);
    let groups = sibling_edges(&mods);
    let ui = groups.get(&vec!["ui".to_owned()]).expect("ui group");
    let cycle = find_cycle(ui).expect("the a <-> b loop");
    assert_eq!(cycle.len(), 3, "{cycle:?}");
    assert!(cycle.contains(&"a".to_owned()) && cycle.contains(&"b".to_owned()));
    let top = groups.get(&Vec::new()).expect("top-level edges");
    assert_eq!(
        top.get("ui").map(|s| s.contains("run")),
        Some(true),
        "{top:?}"
    );
    // Without b's call back into a, the group is a DAG.
    std::fs::write(src.join("ui/b.rs"), "pub struct Thing;\n").expect("write");
    let mods = modules(src);
    assert!(find_cycle(&sibling_edges(&mods)[&vec!["ui".to_owned()]]).is_none());
}
