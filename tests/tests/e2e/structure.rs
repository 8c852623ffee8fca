//! The workspace's structure rules, checked on every test run:
//! - no module of any crate reaches (through `crate::`/`super::` paths) a module that reaches it
//!   back: every crate's modules form a DAG, so each can be read before the ones that use it;
//! - the adapters (the embedded lake, AWS) never depend on the pipeline's handlers;
//! - the handlers (floe-pipeline) depend on no engine or runtime: not DataFusion, not SQLite
//!   (sqlx), not an HTTP stack (hyper), and not the local runtime;
//! - floe-core depends on no other floe crate;
//! - a source file over 700 lines says at its top why it is one piece.
//!
//! Dependencies are read from `cargo metadata` (normal dependencies, followed transitively).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// A crate's modules (by path, `a::b`) and, for each, the modules it names.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    fn files(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("readable src").flatten() {
            let p = e.path();
            if p.is_dir() {
                files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut all = Vec::new();
    files(src, &mut all);
    let module_of = |p: &Path| -> Option<String> {
        let rel = p.strip_prefix(src).ok()?.with_extension("");
        let mut parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if parts.last().is_some_and(|l| l == "mod") {
            parts.pop();
        }
        if parts == ["lib"] || parts == ["main"] || parts.is_empty() {
            return None;
        }
        if parts.first().is_some_and(|f| f == "bin") {
            return None;
        }
        Some(parts.join("::"))
    };
    let modules: BTreeSet<String> = all.iter().filter_map(|p| module_of(p)).collect();
    // The longest prefix of `path` that is a module of the crate.
    let resolve = |path: &str| -> Option<String> {
        let segs: Vec<&str> = path.split("::").collect();
        (1..=segs.len())
            .rev()
            .map(|n| segs[..n].join("::"))
            .find(|m| modules.contains(m))
    };
    let mut graph = BTreeMap::new();
    for p in &all {
        let Some(this) = module_of(p) else { continue };
        let text = std::fs::read_to_string(p).expect("readable source");
        let parent: Vec<&str> = {
            let mut v: Vec<&str> = this.split("::").collect();
            v.pop();
            v
        };
        let mut uses = BTreeSet::new();
        let mut in_tests = false;
        for line in text.lines() {
            let t = line.trim_start();
            if t.starts_with("#[cfg(test)]") {
                // Unit tests sit at the end of a file and only use their own module.
                in_tests = true;
            }
            if in_tests || t.starts_with("//") {
                continue;
            }
            for (anchor, base) in [("crate::", Vec::new()), ("super::", parent.clone())] {
                let mut rest = t;
                while let Some(i) = rest.find(anchor) {
                    let before = rest[..i].chars().last();
                    rest = &rest[i + anchor.len()..];
                    if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                        continue;
                    }
                    let mut paths = Vec::new();
                    if let Some(group) = rest.strip_prefix('{') {
                        // `crate::{a, b::c}`: the first segments of each item.
                        let inner = group.split('}').next().unwrap_or_default();
                        paths.extend(inner.split(',').map(|s| s.trim().to_owned()));
                    } else {
                        let p: String = rest
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                            .collect();
                        paths.push(p.trim_end_matches(':').to_owned());
                    }
                    for p in paths {
                        let full = base
                            .iter()
                            .map(|s| s.to_string())
                            .chain(p.split("::").map(str::to_owned))
                            .filter(|s| !s.is_empty())
                            .collect::<Vec<_>>()
                            .join("::");
                        if let Some(m) = resolve(&full)
                            && m != this
                            && !this.starts_with(&format!("{m}::"))
                        {
                            uses.insert(m);
                        }
                    }
                }
            }
        }
        graph.insert(this, uses);
    }
    graph
}

/// The strongly connected components of more than one module (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        let graph = s.graph;
        for w in graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.found
}

/// Every crate's source folder in the workspace.
fn crate_sources() -> Vec<(String, PathBuf)> {
    let root = workspace_root();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("workspace manifest");
    let members = manifest
        .split("members = [")
        .nth(1)
        .and_then(|m| m.split(']').next())
        .expect("a members list");
    members
        .split(',')
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| !m.is_empty())
        .map(|m| (m.to_owned(), root.join(m).join("src")))
        .collect()
}

#[test]
fn no_crate_has_a_module_cycle() {
    let mut found = Vec::new();
    for (name, src) in crate_sources() {
        for c in cycles(&module_graph(&src)) {
            found.push(format!("{name}: {}", c.join(" <-> ")));
        }
    }
    assert!(
        found.is_empty(),
        "modules that reach each other (move what both need into a module of its own):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("local")).unwrap();
    std::fs::write(
        src.join("lib.rs"),
        "pub mod a; pub mod b; pub mod c; pub mod local;",
    )
    .unwrap();
    std::fs::write(src.join("a.rs"), "use crate::b::thing;\n").unwrap();
    std::fs::write(src.join("b.rs"), "fn f() { crate::local::queue::g() }\n").unwrap();
    std::fs::write(src.join("local/mod.rs"), "pub mod queue;\n").unwrap();
    std::fs::write(
        src.join("local/queue.rs"),
        "use crate::{a::x, c};\n// crate::c in a comment\n",
    )
    .unwrap();
    std::fs::write(
        src.join("c.rs"),
        "use super::local::queue;\n#[cfg(test)]\nmod tests { use crate::a; }\n",
    )
    .unwrap();
    let g = module_graph(src);
    assert_eq!(g["a"], BTreeSet::from(["b".to_owned()]));
    assert_eq!(
        g["local::queue"],
        BTreeSet::from(["a".to_owned(), "c".to_owned()])
    );
    let found = cycles(&g);
    assert_eq!(
        found,
        vec![vec![
            "a".to_owned(),
            "b".to_owned(),
            "c".to_owned(),
            "local::queue".to_owned()
        ]]
    );
}

/// Each workspace crate's normal dependencies, transitively, by package name.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    // This machine's platform only: other platforms' crates may not be in the local registry.
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = std::process::Command::new(rustc)
        .arg("-vV")
        .output()
        .expect("rustc runs");
    let host = String::from_utf8_lossy(&version.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .expect("rustc -vV names the host");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", &host])
        .current_dir(workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let name_of: BTreeMap<&str, &str> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let mut direct: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for node in meta["resolve"]["nodes"]
        .as_array()
        .expect("a resolve graph")
    {
        let id = node["id"].as_str().unwrap();
        let deps = node["deps"].as_array().unwrap().iter().filter(|d| {
            d["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].is_null())
        });
        direct.insert(id, deps.map(|d| d["pkg"].as_str().unwrap()).collect());
    }
    let members: Vec<&str> = meta["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    members
        .into_iter()
        .map(|m| {
            let mut seen = BTreeSet::new();
            let mut todo = vec![m];
            while let Some(id) = todo.pop() {
                for d in direct.get(id).into_iter().flatten() {
                    if seen.insert(*d) {
                        todo.push(d);
                    }
                }
            }
            (
                name_of[m].to_owned(),
                seen.into_iter().map(|id| name_of[id].to_owned()).collect(),
            )
        })
        .collect()
}

#[test]
fn crates_depend_only_the_allowed_way() {
    let deps = dependencies();
    let rules: &[(&str, &[&str], &str)] = &[
        (
            "floe-core",
            &[
                "floe-config",
                "floe-lake",
                "floe-pipeline",
                "floe-aws",
                "floe-models",
                "floe-local",
            ],
            "the domain depends on no other floe crate",
        ),
        (
            "floe-lake",
            &["floe-pipeline", "floe-local", "floe-models"],
            "an adapter never depends on the handlers",
        ),
        (
            "floe-aws",
            &["floe-pipeline", "floe-local", "floe-lake", "floe-models"],
            "an adapter never depends on the handlers or the embedded engine",
        ),
        (
            "floe-pipeline",
            &[
                "datafusion",
                "sqlx",
                "hyper",
                "floe-local",
                "floe-lake",
                "floe-aws",
            ],
            "the handlers depend on no engine, database or HTTP stack, and not on a runtime",
        ),
        (
            "floe-models",
            &["datafusion", "sqlx", "hyper", "floe-pipeline", "floe-lake"],
            "the model compiler depends on no engine",
        ),
    ];
    let mut broken = Vec::new();
    for (krate, forbidden, why) in rules {
        let Some(has) = deps.get(*krate) else {
            broken.push(format!(
                "{krate} is not a workspace member any more: update this rule"
            ));
            continue;
        };
        for f in *forbidden {
            if has.contains(*f) {
                broken.push(format!("{krate} depends on {f}: {why}"));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn a_long_file_says_why_it_is_one_piece() {
    const LIMIT: usize = 700;
    let root = workspace_root();
    let mut long = Vec::new();
    for (name, src) in crate_sources() {
        let krate = src.parent().expect("a crate folder").to_path_buf();
        let mut stack = vec![krate];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).expect("readable").flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                if p.extension().is_none_or(|x| x != "rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&p).expect("readable source");
                let head: String = text.lines().take(20).collect::<Vec<_>>().join("\n");
                if text.lines().count() > LIMIT && !head.contains("over 700 lines") {
                    long.push(format!(
                        "{name}: {} has {} lines",
                        p.strip_prefix(&root).unwrap_or(&p).display(),
                        text.lines().count()
                    ));
                }
            }
        }
    }
    assert!(
        long.is_empty(),
        "split these, or say at the top (\"One file (over 700 lines) because ...\") why each is one piece:\n{}",
        long.join("\n")
    );
}
