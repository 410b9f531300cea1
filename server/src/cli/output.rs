//! Printing command results: JSON for machines, aligned text for people.
use serde::Serialize;

/// Prints `value` as JSON when asked, otherwise `text`.
pub fn print<T: Serialize>(json: bool, value: &T, text: &str) {
    if json {
        match serde_json::to_string_pretty(value) {
            Ok(encoded) => println!("{encoded}"),
            Err(err) => eprintln!("umbra: error: cannot encode the output: {err}"),
        }
    } else {
        println!("{text}");
    }
}

/// `label: value` lines with the values aligned; a value of several lines (a list) keeps its
/// later lines under its first.
pub fn fields(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(label, _)| label.len()).max().unwrap_or(0) + 1;
    let indent = format!("\n{:width$} ", "");
    rows.iter()
        .map(|(label, value)| {
            format!(
                "{:width$} {}",
                format!("{label}:"),
                value.replace('\n', &indent)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Space-separated scopes in text output, where an empty list must still read as one.
pub fn scopes_or_none(scopes: &str) -> &str {
    if scopes.is_empty() { "(none)" } else { scopes }
}
