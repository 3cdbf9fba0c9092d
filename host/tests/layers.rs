//! The library's modules form layers: every `crate::` path points down, never in a cycle.
//!
//! The graph is drawn from the code — each module's `crate::…` paths outside comments,
//! with names re-exported at the crate root resolved to the module that defines them —
//! and the README's architecture section shows exactly this drawing. After a change that
//! moves a dependency, run `RILL_BLESS=1 cargo test -p rill --test layers` to redraw it.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test: a panic is a test failure")]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const BEGIN: &str = "<!-- module graph: drawn by host/tests/layers.rs -->";
const END: &str = "<!-- end of module graph -->";

#[test]
fn modules_form_a_dag_and_the_readme_draws_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = module_graph(&src);
    let layers = layers(&graph);
    let drawing = draw(&graph, &layers);

    let readme_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = fs::read_to_string(&readme_path).unwrap();
    let (before, rest) = readme.split_once(BEGIN).expect("the README has the module graph's begin marker");
    let (shown, after) = rest.split_once(END).expect("the README has the module graph's end marker");
    let expected = format!("\n```text\n{drawing}```\n");
    if shown != expected {
        if std::env::var_os("RILL_BLESS").is_some() {
            fs::write(&readme_path, format!("{before}{BEGIN}{expected}{END}{after}")).unwrap();
        } else {
            panic!(
                "the README's module graph is out of date; run `RILL_BLESS=1 cargo test -p rill --test layers`.\nDrawn from the code:\n{drawing}"
            );
        }
    }
}

/// Each module of `src/lib.rs` and the modules its code names.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let lib = strip_comments(&fs::read_to_string(src.join("lib.rs")).unwrap());
    let modules: BTreeSet<String> = lib
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let rest = line.strip_prefix("pub mod ").or_else(|| line.strip_prefix("mod "))?;
            Some(rest.strip_suffix(';')?.to_owned())
        })
        .collect();
    assert!(modules.len() > 5, "found the library's modules in lib.rs: {modules:?}");
    // `pub use module::{A, B}` at the root: A and B live in `module`.
    let mut exported = BTreeMap::new();
    for (module, items) in uses(&lib, "pub use ") {
        if modules.contains(&module) {
            for item in items {
                exported.insert(item, module.clone());
            }
        }
    }
    let mut graph = BTreeMap::new();
    for module in &modules {
        let mut deps = BTreeSet::new();
        for file in files_of(src, module) {
            let code = strip_comments(&fs::read_to_string(&file).unwrap());
            for name in crate_paths(&code) {
                let target = if modules.contains(&name) { Some(&name) } else { exported.get(&name) };
                if let Some(target) = target.filter(|t| *t != module) {
                    deps.insert(target.clone());
                }
            }
        }
        graph.insert(module.clone(), deps);
    }
    graph
}

/// The files of `module`: `module.rs`, and `module/**.rs` if it is a folder.
fn files_of(src: &Path, module: &str) -> Vec<PathBuf> {
    let mut files = vec![];
    let file = src.join(format!("{module}.rs"));
    if file.exists() {
        files.push(file);
    }
    let mut dirs = vec![src.join(module)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    assert!(!files.is_empty(), "no source for module {module}");
    files
}

/// `code` without `//` comments (doc comments included: links in docs are not
/// dependencies). Strings are kept whole, so `"a//b"` stays.
fn strip_comments(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    for line in code.lines() {
        let mut in_string = false;
        let mut escaped = false;
        let mut cut = line.len();
        let bytes = line.as_bytes();
        for i in 0..bytes.len() {
            match bytes[i] {
                _ if escaped => escaped = false,
                b'\\' if in_string => escaped = true,
                b'"' => in_string = !in_string,
                b'/' if !in_string && bytes.get(i + 1) == Some(&b'/') => {
                    cut = i;
                    break;
                }
                _ => {}
            }
        }
        out.push_str(&line[..cut]);
        out.push('\n');
    }
    out
}

/// The first segment of every `crate::…` path in `code`, including each path of a
/// `crate::{a, b::c}` group.
fn crate_paths(code: &str) -> Vec<String> {
    let mut names = vec![];
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let preceded = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if preceded.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `rill_crate::…` or similar
        }
        if let Some(group) = rest.strip_prefix('{') {
            let body = braced(group);
            names.extend(split_top_level(body).into_iter().map(|path| first_segment(&path)));
        } else {
            names.push(first_segment(rest));
        }
    }
    names.retain(|n| !n.is_empty() && n != "self");
    names
}

/// `pub use module::{A, B}` / `pub use module::A;` items of `code`, by module.
fn uses(code: &str, prefix: &str) -> Vec<(String, Vec<String>)> {
    let mut found = vec![];
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        rest = &rest[at + prefix.len()..];
        let statement = &rest[..rest.find(';').unwrap_or(rest.len())];
        let Some((module, items)) = statement.split_once("::") else { continue };
        let items = match items.trim().strip_prefix('{') {
            Some(group) => split_top_level(braced(group)),
            None => vec![items.trim().to_owned()],
        };
        let names = items.iter().map(|item| last_segment(item)).collect();
        found.push((module.trim().to_owned(), names));
    }
    found
}

/// The text of a `{…}` group whose opening brace was just consumed.
fn braced(after_open: &str) -> &str {
    let mut depth = 1;
    for (i, c) in after_open.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &after_open[..i];
                }
            }
            _ => {}
        }
    }
    after_open
}

fn split_top_level(group: &str) -> Vec<String> {
    let mut parts = vec![];
    let mut depth = 0;
    let mut current = String::new();
    for c in group.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current).trim().to_owned());
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current.trim().to_owned());
    parts.retain(|p| !p.is_empty());
    parts
}

fn first_segment(path: &str) -> String {
    path.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
}

fn last_segment(item: &str) -> String {
    let item = item.split(" as ").last().unwrap_or(item);
    item.rsplit("::").next().unwrap_or(item).trim().to_owned()
}

/// Each module's layer: 0 for a module that names no other, else one above the highest
/// module it names. Panics, naming a cycle, if there is one.
fn layers(graph: &BTreeMap<String, BTreeSet<String>>) -> BTreeMap<String, usize> {
    fn visit(
        module: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        layers: &mut BTreeMap<String, usize>,
        path: &mut Vec<String>,
    ) -> usize {
        if let Some(&layer) = layers.get(module) {
            return layer;
        }
        if let Some(start) = path.iter().position(|m| m == module) {
            panic!("host/src has an import cycle: {} -> {module}", path[start..].join(" -> "));
        }
        path.push(module.to_owned());
        let layer = graph[module].iter().map(|dep| visit(dep, graph, layers, path) + 1).max().unwrap_or(0);
        path.pop();
        layers.insert(module.to_owned(), layer);
        layer
    }
    let mut layers = BTreeMap::new();
    for module in graph.keys() {
        visit(module, graph, &mut layers, &mut vec![]);
    }
    layers
}

/// One line per module, top layer first: `L3  call  -> admission, cache, …`.
fn draw(graph: &BTreeMap<String, BTreeSet<String>>, layers: &BTreeMap<String, usize>) -> String {
    let mut order: Vec<(&String, &usize)> = layers.iter().collect();
    order.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let width = graph.keys().map(String::len).max().unwrap_or(0);
    let mut out = String::new();
    for (module, layer) in order {
        let deps: Vec<&str> = graph[module].iter().map(String::as_str).collect();
        let arrow = if deps.is_empty() { String::new() } else { format!(" -> {}", deps.join(", ")) };
        let line = format!("{:<5}{module:<width$}{arrow}", format!("L{layer}"));
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[test]
fn the_parser_finds_grouped_and_plain_paths() {
    let code = strip_comments(
        "use crate::{a, b::{C, d}, e as f};\nlet x = crate::g::h(); // crate::ignored\nlet s = \"x//crate::i\";\nrill_crate::j",
    );
    assert_eq!(crate_paths(&code), ["a", "b", "e", "g", "i"]);
    assert_eq!(
        uses("pub use m::{A, B as C};\npub use n::D;", "pub use "),
        [("m".to_owned(), vec!["A".to_owned(), "C".to_owned()]), ("n".to_owned(), vec!["D".to_owned()])]
    );
}

#[test]
#[should_panic(expected = "host/src has an import cycle: a -> b -> c -> a")]
fn a_cycle_is_named() {
    let graph: BTreeMap<String, BTreeSet<String>> = [("a", "b"), ("b", "c"), ("c", "a")]
        .into_iter()
        .map(|(from, to)| (from.to_owned(), BTreeSet::from([to.to_owned()])))
        .collect();
    layers(&graph);
}
