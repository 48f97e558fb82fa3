//! The crate's layout, enforced: which module may use which (see the Layout section of the crate
//! docs). Layers only look down; features never look sideways; the domain never sees the HTTP
//! edge. A new module must be placed in a layer here, or this test fails.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Layer of each top-level module of `shared/src`. A module may use modules of lower layers and,
/// except for features (3), which never use each other, of its own layer (without a cycle).
const LAYERS: &[(&str, u8)] = &[
    // 0: foundation (pure or near-pure)
    ("appid", 0),
    ("clock", 0),
    ("config", 0),
    ("crypto", 0),
    ("model", 0),
    ("xml", 0),
    ("push", 0),
    ("secrets", 0),
    ("html", 0),
    // 1: ports and adapters
    ("store", 1),
    ("wechat", 1),
    ("queue", 1),
    // 2: the token lifecycle and the permission catalogue every feature uses
    ("tokens", 2),
    ("permissions", 2),
    ("identity", 2),
    ("login_codes", 2),
    // 3: features, side by side
    ("authorization", 3),
    ("open_account", 3),
    ("login", 3),
    ("oauth", 3),
    ("miniprogram_login", 3),
    ("code", 3),
    ("gateway", 3),
    ("events", 2),
    ("reply", 3),
    // fast registration (issue 19)
    ("qr", 0),
    ("registration", 3),
    ("status", 3),
    // 4: composition of features (the push URLs, the scheduled run)
    ("callbacks", 4),
    ("refresher", 4),
    ("releases", 4),
    // 5: the edge and the wiring
    ("http", 5),
    ("app", 5),
    ("runtime", 5),
    ("logging", 5),
];

const FEATURES: u8 = 3;
const EDGE: u8 = 5;

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/authorization/links.rs` → `authorization`).
fn owner(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel.components().next().expect("component");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_string()
}

/// `crate::x` references outside `#[cfg(test)]` modules and comments.
fn uses(text: &str) -> BTreeSet<String> {
    let code = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut out = BTreeSet::new();
    for line in code.lines() {
        let line = line.trim_start();
        if line.starts_with("//") {
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

#[test]
fn modules_only_look_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let module = owner(&src, file);
        if module == "lib" {
            continue;
        }
        let Some(own) = layer(&module) else {
            violations.push(format!(
                "{module}: not placed in a layer (add it to LAYERS)"
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).expect("read");
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        if own < EDGE && (code.contains("lambda_http") || code.contains("ApiError")) {
            violations.push(format!(
                "{}: a domain module uses the HTTP edge (lambda_http / ApiError)",
                file.display()
            ));
        }
        for used in uses(&text) {
            if used == module {
                continue;
            }
            graph
                .entry(module.clone())
                .or_default()
                .insert(used.clone());
            let Some(theirs) = layer(&used) else {
                continue;
            };
            let ok = theirs < own || (theirs == own && own != FEATURES);
            if !ok {
                violations.push(format!(
                    "{}: {module} (layer {own}) uses {used} (layer {theirs})",
                    file.display()
                ));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "layout violations:\n{}",
        violations.join("\n")
    );
    // Same-layer use is allowed outside the features: make sure it has no cycle.
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if done.contains(n) {
            return;
        }
        assert!(
            !path.iter().any(|p| p == n),
            "cycle: {} -> {n}",
            path.join(" -> ")
        );
        path.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            visit(m, g, path, done);
        }
        path.pop();
        done.insert(n.to_string());
    }
    let mut done = BTreeSet::new();
    for n in graph.keys() {
        visit(n, &graph, &mut Vec::new(), &mut done);
    }
}

#[test]
fn every_module_is_placed() {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"))
        .expect("lib.rs");
    for line in lib.lines() {
        if let Some(name) = line.trim().strip_prefix("pub mod ") {
            let name = name.trim_end_matches(';');
            assert!(layer(name).is_some(), "{name} is not placed in LAYERS");
        }
    }
}
