//! Output: human tables (`--output table`) or the server's JSON (`--output json`).

use comfy_table::{presets, Table};
use serde_json::Value;

/// The `--output` format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Tables for lists and descriptions, short lines for operations.
    Table,
    /// The server's JSON, pretty-printed, for scripts.
    Json,
}

/// Prints a JSON value, pretty, on stdout.
pub fn print_json(v: &Value) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => println!("{s}"),
        Err(_) => println!("{v}"),
    }
}

/// A table with a header row and no borders.
pub fn table<I: IntoIterator<Item = &'static str>>(header: I) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    t.set_header(header);
    t
}

/// A two-column `FIELD VALUE` table.
pub fn fields_table(rows: &[(&str, String)]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    for (k, v) in rows {
        t.add_row(vec![k.to_string(), v.clone()]);
    }
    t
}

/// A JSON value as a table cell: strings bare, `null` as `-`, lists comma-separated.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        Value::Bool(true) => "yes".into(),
        Value::Bool(false) => "no".into(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) if a.is_empty() => "-".into(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(", "),
        Value::Object(o) if o.is_empty() => "-".into(),
        Value::Object(_) => v.to_string(),
    }
}

/// The cell of field `name` of an object.
pub fn get(v: &Value, name: &str) -> String {
    cell(v.get(name).unwrap_or(&Value::Null))
}

/// Tags (`{"k": "v"}`) as `k=v, k2=v2`.
pub fn tags(v: &Value) -> String {
    match v {
        Value::Object(o) if !o.is_empty() => o
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "-".into(),
    }
}

/// A copy of `v` without the named top-level fields (binary data written elsewhere).
pub fn without(v: &Value, fields: &[&str]) -> Value {
    let mut v = v.clone();
    if let Value::Object(o) = &mut v {
        for f in fields {
            o.remove(*f);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells() {
        assert_eq!(cell(&json!(null)), "-");
        assert_eq!(cell(&json!(["A", "B"])), "A, B");
        assert_eq!(cell(&json!(true)), "yes");
        assert_eq!(tags(&json!({"a": "1", "b": "2"})), "a=1, b=2");
        assert_eq!(without(&json!({"a": 1, "b": 2}), &["a"]), json!({"b": 2}));
    }
}
