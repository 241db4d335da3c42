//! The OpenAPI document, generated from the handlers (utoipa) with the core message
//! schemas (schemars: the plan, Builder and Auditor requests and results) merged into its
//! components, and the page `/docs` renders it with.
//!
//! The checked-in `autopack-server/openapi.json` is this document; a test keeps it
//! current (`AUTOPACK_BLESS=1` rewrites it).
//!
//! ```
//! let doc = autopack_server::openapi::document();
//! assert!(doc["paths"]["/runs/start"]["post"].is_object());
//! assert!(doc["components"]["schemas"]["BuilderResult"].is_object());
//! ```

use std::sync::OnceLock;

use serde_json::{Map, Value};

/// The `/docs` page: plain HTML and script that fetch `/openapi.json` and list every
/// operation with its parameters, bodies and responses. No CDN, no network.
pub const DOCS_PAGE: &str = include_str!("docs.html");

/// The document.
pub fn document() -> Value {
    use utoipa::OpenApi;
    let mut doc = serde_json::to_value(crate::routes::ApiDoc::openapi()).unwrap_or_default();
    for (name, schema) in autopack::core::schema::core_schemas() {
        merge_schema(
            &mut doc,
            &camel(name),
            serde_json::to_value(schema).unwrap_or_default(),
        );
    }
    doc
}

/// The document as served (pretty JSON with a final newline), computed once.
pub fn document_json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut text = serde_json::to_string_pretty(&document()).unwrap_or_default();
        text.push('\n');
        text
    })
}

fn camel(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

/// Puts a JSON Schema (2020-12, with `$defs`) into `components.schemas` under `name`,
/// its definitions beside it, references rewritten to the components. A definition
/// whose name is taken by a different schema gets the prefix `Core`.
fn merge_schema(doc: &mut Value, name: &str, mut schema: Value) {
    let defs = schema
        .as_object_mut()
        .and_then(|o| {
            o.remove("$schema");
            o.remove("$defs")
        })
        .and_then(|d| d.as_object().cloned())
        .unwrap_or_default();
    let Some(components) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let mut renamed = Map::new();
    for (def, body) in &defs {
        let target = match components.get(def) {
            Some(existing) if existing != body => format!("Core{def}"),
            _ => def.clone(),
        };
        renamed.insert(def.clone(), Value::String(target));
    }
    let rewrite = |mut v: Value| {
        rewrite_refs(&mut v, &renamed);
        v
    };
    for (def, body) in defs.clone() {
        let target = renamed[&def].as_str().unwrap_or(&def).to_owned();
        components.insert(target, rewrite(body));
    }
    components.insert(name.to_owned(), rewrite(schema));
}

fn rewrite_refs(value: &mut Value, renamed: &Map<String, Value>) {
    match value {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get_mut("$ref")
                && let Some(def) = r.strip_prefix("#/$defs/")
            {
                let target = renamed.get(def).and_then(Value::as_str).unwrap_or(def);
                *r = format!("#/components/schemas/{target}");
            }
            for v in o.values_mut() {
                rewrite_refs(v, renamed);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|v| rewrite_refs(v, renamed)),
        _ => {}
    }
}
