//! Every crate the workspace publishes carries the metadata crates.io and docs.rs show
//! (cargo itself warns only when description, licence and all of documentation, homepage
//! and repository are missing), its package holds its README and both licence texts, and
//! no manifest points at a placeholder address.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// crates.io's category slugs (its `src/boot/categories.toml`); crates.io refuses others.
const CRATES_IO_CATEGORIES: &[&str] = &[
    "algorithms",
    "api-bindings",
    "asynchronous",
    "authentication",
    "caching",
    "command-line-interface",
    "command-line-utilities",
    "compression",
    "computer-vision",
    "concurrency",
    "config",
    "cryptography",
    "cryptography::cryptocurrencies",
    "data-structures",
    "database",
    "database-implementations",
    "date-and-time",
    "development-tools",
    "development-tools::build-utils",
    "development-tools::cargo-plugins",
    "development-tools::debugging",
    "development-tools::ffi",
    "development-tools::procedural-macro-helpers",
    "development-tools::profiling",
    "development-tools::testing",
    "email",
    "embedded",
    "emulators",
    "encoding",
    "external-ffi-bindings",
    "filesystem",
    "game-development",
    "game-engines",
    "games",
    "graphics",
    "gui",
    "hardware-support",
    "internationalization",
    "localization",
    "mathematics",
    "memory-management",
    "multimedia",
    "multimedia::audio",
    "multimedia::encoding",
    "multimedia::images",
    "multimedia::video",
    "network-programming",
    "no-std",
    "os",
    "os::linux-apis",
    "os::macos-apis",
    "os::unix-apis",
    "os::windows-apis",
    "parser-implementations",
    "parsing",
    "rendering",
    "rendering::data-formats",
    "rendering::engine",
    "rendering::graphics-api",
    "rust-patterns",
    "science",
    "science::robotics",
    "simulation",
    "template-engine",
    "text-editors",
    "text-processing",
    "value-formatting",
    "visualization",
    "wasm",
    "web-programming",
    "web-programming::http-client",
    "web-programming::http-server",
    "web-programming::websocket",
];

fn cargo(args: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(workspace_root())
        .output()
        .unwrap_or_else(|e| panic!("cargo {args:?} cannot start: {e}"));
    assert!(
        out.status.success(),
        "cargo {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the examples crate sits in the workspace root")
        .to_owned()
}

/// The workspace members that may be published (`publish` absent, not `false`).
fn publishable() -> Vec<Value> {
    let metadata: Value =
        serde_json::from_slice(&cargo(&["metadata", "--no-deps", "--format-version", "1"]))
            .expect("cargo metadata prints JSON");
    let packages: Vec<Value> = metadata["packages"]
        .as_array()
        .expect("cargo metadata lists packages")
        .iter()
        .filter(|p| {
            p["publish"]
                .as_array()
                .is_none_or(|registries| !registries.is_empty())
        })
        .cloned()
        .collect();
    assert!(
        packages.len() >= 9,
        "expected the nine library crates at least, found {}",
        packages.len()
    );
    packages
}

fn text<'a>(package: &'a Value, field: &str) -> Option<&'a str> {
    package[field].as_str().filter(|s| !s.trim().is_empty())
}

fn strings<'a>(package: &'a Value, field: &str) -> Vec<&'a str> {
    package[field]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Everything wrong with one package's metadata, one sentence each.
fn metadata_problems(package: &Value) -> Vec<String> {
    let name = package["name"].as_str().expect("a package has a name");
    let mut problems = Vec::new();
    for field in ["description", "license", "rust_version", "readme"] {
        if text(package, field).is_none() {
            problems.push(format!("{name}: no `{}`", field.replace('_', "-")));
        }
    }
    if text(package, "license") != Some("MIT OR Apache-2.0") {
        problems.push(format!("{name}: license is not \"MIT OR Apache-2.0\""));
    }
    let docs = format!("https://docs.rs/{name}");
    if text(package, "documentation") != Some(docs.as_str()) {
        problems.push(format!("{name}: documentation is not {docs:?}"));
    }
    for field in ["documentation", "homepage", "repository"] {
        if let Some(url) = text(package, field)
            && url_host(url).is_none_or(|host| host.ends_with(".invalid"))
        {
            problems.push(format!("{name}: {field} {url:?} is not a real address"));
        }
    }
    let keywords = strings(package, "keywords");
    if keywords.is_empty() || keywords.len() > 5 {
        problems.push(format!(
            "{name}: {} keywords; crates.io takes 1 to 5",
            keywords.len()
        ));
    }
    for keyword in keywords {
        let valid = keyword.len() <= 20
            && keyword.starts_with(|c: char| c.is_ascii_alphabetic())
            && keyword
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+'));
        if !valid {
            problems.push(format!(
                "{name}: keyword {keyword:?} is not one crates.io accepts"
            ));
        }
    }
    let categories = strings(package, "categories");
    if categories.is_empty() {
        problems.push(format!("{name}: no categories"));
    }
    for category in categories {
        if !CRATES_IO_CATEGORIES.contains(&category) {
            problems.push(format!(
                "{name}: {category:?} is not a crates.io category slug"
            ));
        }
    }
    if package["metadata"]["docs"]["rs"]["all-features"] != Value::Bool(true) {
        problems.push(format!(
            "{name}: no `[package.metadata.docs.rs] all-features = true` (docs.rs would leave feature-gated API out)"
        ));
    }
    problems
}

/// The host of an `http(s)://` address.
fn url_host(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    rest.split(['/', ':']).next().filter(|h| !h.is_empty())
}

#[test]
fn every_publishable_crate_has_complete_metadata() {
    let problems: Vec<String> = publishable().iter().flat_map(metadata_problems).collect();
    assert!(
        problems.is_empty(),
        "package metadata:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_package_holds_its_readme_and_both_licences() {
    let root = workspace_root();
    for package in publishable() {
        let name = package["name"].as_str().expect("a package has a name");
        let listed = String::from_utf8(cargo(&["package", "-p", name, "--list", "--allow-dirty"]))
            .expect("file names are UTF-8");
        let files: Vec<&str> = listed.lines().collect();
        let dir = Path::new(package["manifest_path"].as_str().expect("a manifest path"))
            .parent()
            .expect("a manifest sits in a directory")
            .to_owned();
        for licence in ["LICENSE-MIT", "LICENSE-APACHE"] {
            assert!(
                files.contains(&licence),
                "{name}: its package lacks {licence}"
            );
            let packaged = std::fs::read(dir.join(licence))
                .unwrap_or_else(|e| panic!("{name}: {licence} cannot be read: {e}"));
            let workspace = std::fs::read(root.join(licence)).expect("the workspace's licence");
            assert!(
                packaged == workspace,
                "{name}: {licence} differs from the workspace's"
            );
        }
        let readme = package["readme"].as_str().unwrap_or("README.md");
        assert!(
            files.contains(&readme),
            "{name}: its package lacks {readme}"
        );
    }
}

#[test]
fn the_metadata_check_names_what_is_missing() {
    let bare = serde_json::json!({
        "name": "demo",
        "license": "MIT",
        "repository": "https://example.invalid/demo",
        "keywords": ["ok", "9lives", "far-too-long-for-a-keyword"],
        "categories": ["development-tools", "ai"],
        "metadata": null,
    });
    let problems = metadata_problems(&bare);
    for expected in [
        "demo: no `description`",
        "demo: no `rust-version`",
        "demo: no `readme`",
        "demo: license is not \"MIT OR Apache-2.0\"",
        "demo: documentation is not \"https://docs.rs/demo\"",
        "demo: repository \"https://example.invalid/demo\" is not a real address",
        "demo: keyword \"9lives\" is not one crates.io accepts",
        "demo: keyword \"far-too-long-for-a-keyword\" is not one crates.io accepts",
        "demo: \"ai\" is not a crates.io category slug",
    ] {
        assert!(
            problems.iter().any(|p| p == expected),
            "missing {expected:?} in {problems:#?}"
        );
    }
    assert!(problems.iter().any(|p| p.contains("all-features = true")));
}
