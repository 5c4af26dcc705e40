//! Output: human tables (`--output table`) or the server's JSON (`--output json`).

use std::io::Write;

use comfy_table::{presets, Table};
use serde_json::Value;

/// Writes to stdout. A closed pipe (`arca key list | head`) ends the process quietly with
/// status 141, as a process killed by SIGPIPE would; other write errors end it with status 1.
pub fn write_stdout(bytes: &[u8]) {
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(bytes).and_then(|_| o.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// `println!` through [`write_stdout`].
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format!("{}\n", format_args!($($arg)*)).as_bytes())
    };
}
pub(crate) use outln;

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
        Ok(s) => outln!("{s}"),
        Err(_) => outln!("{v}"),
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

/// The cell of field `name` of an object; times (`*_at`, `*_date`, `at`, `destroy_after`)
/// are shown to the second.
pub fn get(v: &Value, name: &str) -> String {
    let val = v.get(name).unwrap_or(&Value::Null);
    let is_time =
        name == "at" || name == "destroy_after" || name.ends_with("_at") || name.ends_with("_date");
    match val.as_str() {
        Some(s) if is_time => short_time(s),
        _ => cell(val),
    }
}

/// An RFC 3339 time to the second, in UTC (`2030-01-31T12:00:00Z`); other text unchanged.
pub fn short_time(s: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(d) => d
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
        Err(_) => s.to_string(),
    }
}

/// Prints a table without the padding at the start and end of each line.
pub fn show(t: &Table) {
    outln!("{}", render(t));
}

/// A table as text, each line trimmed.
pub fn render(t: &Table) -> String {
    t.to_string()
        .lines()
        .map(|l| l.strip_prefix(' ').unwrap_or(l).trim_end())
        .collect::<Vec<_>>()
        .join("\n")
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

/// The array in field `name` of an object (empty when absent).
pub fn items<'a>(v: &'a Value, name: &str) -> &'a [Value] {
    v.get(name)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// A secret shown once (a new API token, a session's access token): what it is goes to
/// stderr, the secret alone to stdout, so `T=$(arca token create app)` captures just it.
pub fn secret_once(what: &str, secret: &str) {
    eprintln!("{what}");
    eprintln!("It is shown once: keep it safe (or use --save-profile NAME next time).");
    outln!("{secret}");
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
        assert_eq!(
            get(
                &json!({"created_at": "2026-11-25T21:18:07.063970454Z"}),
                "created_at"
            ),
            "2026-11-25T21:18:07Z"
        );
        let mut t = table(["A", "B"]);
        t.add_row(vec!["1", "2"]);
        assert_eq!(render(&t), "A  B\n1  2");
    }
}
