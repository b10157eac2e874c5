//! Readers (JSON, TOML, CSV text → [`RawCatalog`]) and writers (catalog → text) of
//! the flat catalog format.
//!
//! Readers only check syntax and structure; every field rule lives in `rows`.
//! Scalars become text: numbers keep their shortest decimal form (`14.02`), so a
//! price may be written as a number, but a string is safer (no float rounding).
//! Writers emit every field an entry has, so that parsing the output gives back an
//! equal catalog.

use crate::catalog::{ArchTag, BillingMode};

use super::{
    Catalog, CatalogEntry, CatalogFormat, HEADER_FIELDS, ImportIssue, ImportProblem, ROW_FIELDS,
    rows::{Cell, RawCatalog, RawRow},
};

const ITEMS: &str = "items";

fn syntax(format: CatalogFormat, detail: impl Into<String>, line: Option<usize>) -> ImportIssue {
    ImportIssue::file(ImportProblem::Syntax {
        format,
        detail: detail.into(),
    })
    .at_line(line)
}

/// 1-based line of byte offset `pos` in `text`.
fn line_of(text: &str, pos: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(pos)
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

// ---- JSON ----

fn json_cell(value: &serde_json::Value) -> Option<Cell> {
    use serde_json::Value;
    match value {
        Value::Null => None,
        Value::Bool(b) => Some(Cell::Text(b.to_string())),
        Value::Number(n) => Some(Cell::Text(n.to_string())),
        Value::String(s) => Some(Cell::Text(s.clone())),
        Value::Array(_) | Value::Object(_) => Some(Cell::Nested),
    }
}

fn json_fields(map: &serde_json::Map<String, serde_json::Value>) -> Vec<(String, Cell)> {
    map.iter()
        .filter_map(|(k, v)| json_cell(v).map(|c| (k.clone(), c)))
        .collect()
}

pub(crate) fn read_json(text: &str) -> Result<RawCatalog, ImportIssue> {
    use serde_json::Value;
    let value: Value = serde_json::from_str(text)
        .map_err(|e| syntax(CatalogFormat::Json, e.to_string(), Some(e.line())))?;
    let Value::Object(mut top) = value else {
        return Err(syntax(
            CatalogFormat::Json,
            "expected an object with catalog fields and an `items` array",
            None,
        ));
    };
    let items = top.remove(ITEMS);
    let mut raw = RawCatalog {
        header: json_fields(&top),
        ..RawCatalog::default()
    };
    match items {
        None => raw.issues.push(ImportIssue::header(
            ITEMS,
            ImportProblem::HeaderFieldMissing,
        )),
        Some(Value::Array(items)) => {
            raw.row_count = items.len();
            for (i, item) in items.iter().enumerate() {
                let row = i + 1;
                match item {
                    Value::Object(map) => raw.rows.push(RawRow {
                        row,
                        line: None,
                        fields: json_fields(map),
                    }),
                    _ => raw.issues.push(ImportIssue {
                        row: Some(row),
                        ..ImportIssue::file(ImportProblem::RowNotRecord)
                    }),
                }
            }
        }
        Some(_) => raw.issues.push(ImportIssue::header(
            ITEMS,
            ImportProblem::HeaderFieldInvalid {
                value: "(not an array)".to_string(),
            },
        )),
    }
    Ok(raw)
}

// ---- TOML ----

fn toml_cell(value: &toml::Value) -> Cell {
    use toml::Value;
    match value {
        Value::String(s) => Cell::Text(s.clone()),
        Value::Integer(i) => Cell::Text(i.to_string()),
        Value::Float(f) => Cell::Text(f.to_string()),
        Value::Boolean(b) => Cell::Text(b.to_string()),
        Value::Datetime(_) | Value::Array(_) | Value::Table(_) => Cell::Nested,
    }
}

fn toml_fields(table: &toml::Table) -> Vec<(String, Cell)> {
    table
        .iter()
        .map(|(k, v)| (k.clone(), toml_cell(v)))
        .collect()
}

pub(crate) fn read_toml(text: &str) -> Result<RawCatalog, ImportIssue> {
    let mut top: toml::Table = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start));
        syntax(CatalogFormat::Toml, e.message().trim_end(), line)
    })?;
    let items = top.remove(ITEMS);
    let mut raw = RawCatalog {
        header: toml_fields(&top),
        ..RawCatalog::default()
    };
    match items {
        None => raw.issues.push(ImportIssue::header(
            ITEMS,
            ImportProblem::HeaderFieldMissing,
        )),
        Some(toml::Value::Array(items)) => {
            raw.row_count = items.len();
            for (i, item) in items.iter().enumerate() {
                let row = i + 1;
                match item {
                    toml::Value::Table(table) => raw.rows.push(RawRow {
                        row,
                        line: None,
                        fields: toml_fields(table),
                    }),
                    _ => raw.issues.push(ImportIssue {
                        row: Some(row),
                        ..ImportIssue::file(ImportProblem::RowNotRecord)
                    }),
                }
            }
        }
        Some(_) => raw.issues.push(ImportIssue::header(
            ITEMS,
            ImportProblem::HeaderFieldInvalid {
                value: "(not an array of tables)".to_string(),
            },
        )),
    }
    Ok(raw)
}

// ---- CSV ----

/// Splits off the leading `# key: value` lines (and blank lines) before the column
/// row. Keys are lower-case ASCII and `_`; other `#` lines are comments.
/// Returns the header fields, the number of lines consumed and the rest.
fn csv_preamble(text: &str) -> (Vec<(String, Cell)>, usize, &str) {
    let mut header = Vec::new();
    let mut consumed = 0;
    let mut lines = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if let Some(meta) = t.strip_prefix('#') {
            if let Some((key, value)) = meta.split_once(':') {
                let key = key.trim();
                if !key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                    header.push((key.to_string(), Cell::Text(value.trim().to_string())));
                }
            }
        } else if !t.is_empty() {
            break;
        }
        consumed += line.len();
        lines += 1;
    }
    (header, lines, &text[consumed..])
}

pub(crate) fn read_csv(text: &str) -> Result<RawCatalog, ImportIssue> {
    // Excel writes a byte-order mark at the start of UTF-8 CSV files.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (header, skipped, body) = csv_preamble(text);
    let mut raw = RawCatalog {
        header,
        ..RawCatalog::default()
    };
    let line_at = |pos: Option<&csv::Position>| {
        pos.and_then(|p| usize::try_from(p.line()).ok())
            .map(|l| l + skipped)
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(body.as_bytes());
    let mut records = reader.records();
    let columns: Vec<String> = match records.next() {
        None => {
            raw.issues.push(ImportIssue::header(
                "code",
                ImportProblem::HeaderFieldMissing,
            ));
            return Ok(raw);
        }
        Some(Err(e)) => {
            return Err(syntax(
                CatalogFormat::Csv,
                e.to_string(),
                line_at(e.position()),
            ));
        }
        Some(Ok(record)) => {
            let line = line_at(record.position());
            let columns: Vec<String> = record.iter().map(|c| c.trim().to_string()).collect();
            for (i, column) in columns.iter().enumerate() {
                if !ROW_FIELDS.contains(&column.as_str()) {
                    raw.issues.push(
                        ImportIssue::header(column, ImportProblem::HeaderFieldUnknown)
                            .at_line(line),
                    );
                } else if columns[..i].contains(column) {
                    raw.issues.push(
                        ImportIssue::header(
                            column,
                            ImportProblem::HeaderFieldInvalid {
                                value: "(duplicate column)".to_string(),
                            },
                        )
                        .at_line(line),
                    );
                }
            }
            for required in ["code", "name", "unit", "billing", "measure"] {
                if !columns.iter().any(|c| c == required) {
                    raw.issues.push(
                        ImportIssue::header(required, ImportProblem::HeaderFieldMissing)
                            .at_line(line),
                    );
                }
            }
            columns
        }
    };
    for result in records {
        let record =
            result.map_err(|e| syntax(CatalogFormat::Csv, e.to_string(), line_at(e.position())))?;
        // Spreadsheets leave rows of empty cells at the end; they are not items.
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        raw.row_count += 1;
        let row = raw.row_count;
        let line = line_at(record.position());
        if record.len() > columns.len() {
            raw.issues.push(ImportIssue {
                row: Some(row),
                line,
                ..ImportIssue::file(ImportProblem::RowFieldCount {
                    expected: columns.len(),
                    found: record.len(),
                })
            });
        }
        // Unknown columns were reported once, on the header; skip their cells here.
        let fields = columns
            .iter()
            .zip(record.iter())
            .filter(|(c, _)| ROW_FIELDS.contains(&c.as_str()))
            .map(|(c, v)| (c.clone(), Cell::Text(v.to_string())))
            .collect();
        raw.rows.push(RawRow { row, line, fields });
    }
    Ok(raw)
}

// ---- writers ----

/// A field value to write: text, or a whole number written unquoted where the
/// format allows it.
enum Out {
    Str(String),
    Int(u32),
}

impl Out {
    fn text(&self) -> String {
        match self {
            Out::Str(s) => s.clone(),
            Out::Int(n) => n.to_string(),
        }
    }
}

fn header_fields(c: &Catalog) -> Vec<(&'static str, String)> {
    let mut out = vec![("id", c.id.to_string()), ("name", c.name.to_string())];
    if let Some(s) = &c.source {
        out.push(("source", s.to_string()));
    }
    out.push(("price_basis", c.price_basis.as_str().to_string()));
    if let Some(n) = &c.note {
        out.push(("note", n.to_string()));
    }
    debug_assert!(out.iter().all(|(k, _)| HEADER_FIELDS.contains(k)));
    out
}

fn billing_str(b: BillingMode) -> &'static str {
    match b {
        BillingMode::Monthly => "monthly",
        BillingMode::Yearly => "yearly",
        BillingMode::OneOff => "one_off",
    }
}

/// An entry's fields, in [`ROW_FIELDS`] order, absent ones left out.
fn entry_fields(e: &CatalogEntry) -> Vec<(&'static str, Out)> {
    let s = |v: &dyn ToString| Out::Str(v.to_string());
    let mut out = vec![("code", s(&e.code))];
    if let Some(v) = &e.category {
        out.push(("category", s(v)));
    }
    if let Some(v) = &e.subcategory {
        out.push(("subcategory", s(v)));
    }
    out.push(("name", s(&e.name)));
    if let Some(v) = &e.description {
        out.push(("description", s(v)));
    }
    out.push(("unit", s(&e.unit)));
    if let Some(v) = e.price {
        out.push(("price", s(&v)));
    }
    out.push(("billing", Out::Str(billing_str(e.billing).to_string())));
    let arch = match e.arch {
        None => "any",
        Some(ArchTag::X86) => "x86",
        Some(ArchTag::Xinchuang) => "xinchuang",
    };
    out.push(("arch", Out::Str(arch.to_string())));
    if let Some(w) = e.weight_percent {
        out.push(("weight_percent", Out::Int(w)));
    }
    if let Some(shape) = &e.shape {
        out.push(("vcpu_min", Out::Int(shape.vcpu.min())));
        out.push(("vcpu_max", Out::Int(shape.vcpu.max())));
        out.push(("vcpu_step", Out::Int(shape.vcpu.step())));
        out.push(("memory_min_gib", Out::Int(shape.memory_gib.min())));
        out.push(("memory_max_gib", Out::Int(shape.memory_gib.max())));
        out.push(("memory_step_gib", Out::Int(shape.memory_gib.step())));
    }
    if let Some(r) = e.vcpu_per_core_max {
        out.push(("vcpu_per_core_max", Out::Int(r)));
    }
    out.push(("measure", s(&e.resource.measure)));
    out.push(("quantity", Out::Int(e.resource.quantity)));
    if let Some(c) = &e.resource.class {
        out.push(("class", s(c)));
    }
    if let Some(k) = e.resource.kind {
        out.push(("resource_kind", s(&k)));
    }
    if let Some(n) = &e.note {
        out.push(("note", s(n)));
    }
    debug_assert!(out.iter().all(|(k, _)| ROW_FIELDS.contains(k)));
    out
}

pub(crate) fn write_json(c: &Catalog) -> String {
    use serde_json::{Map, Value};
    let mut top = Map::new();
    for (k, v) in header_fields(c) {
        top.insert(k.to_string(), Value::String(v));
    }
    let items = c
        .entries
        .iter()
        .map(|e| {
            let mut m = Map::new();
            for (k, v) in entry_fields(e) {
                let v = match v {
                    Out::Str(s) => Value::String(s),
                    Out::Int(n) => Value::from(n),
                };
                m.insert(k.to_string(), v);
            }
            Value::Object(m)
        })
        .collect();
    top.insert(ITEMS.to_string(), Value::Array(items));
    let mut text = Value::Object(top).to_string();
    text.push('\n');
    text
}

/// A TOML basic string: `"…"` with `\`, `"` and control characters escaped.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub(crate) fn write_toml(c: &Catalog) -> String {
    let mut out = String::new();
    for (k, v) in header_fields(c) {
        out.push_str(&format!("{k} = {}\n", toml_string(&v)));
    }
    for e in &c.entries {
        out.push_str("\n[[items]]\n");
        for (k, v) in entry_fields(e) {
            let v = match v {
                Out::Str(s) => toml_string(&s),
                Out::Int(n) => n.to_string(),
            };
            out.push_str(&format!("{k} = {v}\n"));
        }
    }
    out
}

/// An RFC 4180 cell: quoted when it holds a comma, quote, line break or edge space.
fn csv_cell(s: &str) -> String {
    let quote = s.contains([',', '"', '\n', '\r']) || s.trim() != s;
    if quote {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub(crate) fn write_csv(c: &Catalog) -> String {
    let mut out = String::new();
    for (k, v) in header_fields(c) {
        // Header values sit on one `#` line each, so line breaks become spaces.
        let v: String = v
            .chars()
            .map(|ch| if ch == '\n' || ch == '\r' { ' ' } else { ch })
            .collect();
        out.push_str(&format!("# {k}: {v}\n"));
    }
    out.push_str(&ROW_FIELDS.join(","));
    out.push('\n');
    for e in &c.entries {
        let fields = entry_fields(e);
        let cells: Vec<String> = ROW_FIELDS
            .iter()
            .map(|col| {
                fields
                    .iter()
                    .find(|(k, _)| k == col)
                    .map(|(_, v)| csv_cell(&v.text()))
                    .unwrap_or_default()
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}
