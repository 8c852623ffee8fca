//! Reading a landed file into text columns, checked against its table config.
//!
//! One file (over 700 lines) because the three formats share one checking pass (header
//! mapping, types, keys, drift, the problem list and its limit); each format's reader is one
//! function here.
//!
//! Every problem names the line (file line, header = line 1) and column, says what is wrong and
//! what to do; a file with any problem is refused whole, so nothing half-valid reaches bronze.

use std::collections::{BTreeSet, HashMap};

/// A hash map with a fast, non-cryptographic hasher (keys of one file, not an attacker's).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

use arrow_array::builder::StringBuilder;
use arrow_array::{Array, ArrayRef, StringArray};
use arrow_cast::{CastOptions, cast_with_options};
use arrow_schema::{DataType, TimeUnit};
use floe_config::{ColumnType, FileFormat, LoadKind, SchemaChangePolicy, TableConfig};
use serde::Serialize;

/// At most this many problems are listed in a quarantine report.
pub const MAX_PROBLEMS: usize = 50;

/// One thing wrong with a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The file line (1 = the header of a CSV file), when one line is at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// The column at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// What is wrong and what to do.
    pub message: String,
}

impl Problem {
    /// A problem with the file as a whole.
    pub fn file(message: impl Into<String>) -> Self {
        Problem {
            line: None,
            column: None,
            message: message.into(),
        }
    }

    fn at(line: u64, column: Option<&str>, message: impl Into<String>) -> Self {
        Problem {
            line: Some(line),
            column: column.map(str::to_owned),
            message: message.into(),
        }
    }

    /// `file:line: column c: message`.
    pub fn render(&self, file: &str) -> String {
        let mut s = file.to_owned();
        if let Some(l) = self.line {
            s.push_str(&format!(":{l}"));
        }
        s.push_str(": ");
        if let Some(c) = &self.column {
            s.push_str(&format!("column {c}: "));
        }
        s.push_str(&self.message);
        s
    }
}

/// A file's rows as text, one array per declared column (config order, then `_rescued` under
/// `schema_change: rescue`), with each row's file line.
#[derive(Debug)]
pub struct Extract {
    /// Declared columns, as text (trimmed values are checked; the text is kept as delivered).
    pub columns: Vec<ArrayRef>,
    /// The file line of each row.
    pub lines: Vec<u64>,
}

impl Extract {
    /// Rows in the file.
    pub fn rows(&self) -> usize {
        self.lines.len()
    }
}

/// A header as floe names columns: snake_case (`Person ID` and `personId` both become `person_id`).
pub fn snake_case(header: &str) -> String {
    let mut out = String::new();
    let mut prev: Option<char> = None;
    for c in header.trim().chars() {
        if c.is_alphanumeric() {
            if c.is_uppercase() && prev.is_some_and(|p| p.is_lowercase() || p.is_ascii_digit()) {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
        prev = Some(c);
    }
    out.trim_end_matches('_').to_owned()
}

/// Reads and checks a file of `table`'s format.
pub fn read(table: &TableConfig, bytes: &[u8]) -> Result<Extract, Vec<Problem>> {
    read_with(table, bytes, &BTreeSet::new())
}

/// [`read`], leaving out the file's columns named in `retired` (columns the lake keeps that the
/// config no longer declares: a source may still send them).
pub fn read_with(
    table: &TableConfig,
    bytes: &[u8],
    retired: &BTreeSet<String>,
) -> Result<Extract, Vec<Problem>> {
    let shape = Shape { table, retired };
    let bytes = decompress(bytes)?;
    let bytes: &[u8] = &bytes;
    if let Some(p) = wrong_format(table.format, bytes) {
        return Err(vec![p]);
    }
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(vec![Problem::file(
            "the file is empty: land the extract again with its rows (an empty full extract would close every current version)",
        )]);
    }
    let extract = match table.format {
        FileFormat::Csv => read_csv(&shape, bytes)?,
        FileFormat::Parquet => read_parquet(&shape, bytes)?,
        FileFormat::Jsonl => read_jsonl(&shape, bytes)?,
    };
    if extract.rows() == 0 {
        return Err(vec![Problem::file(
            "the file has a header but no rows: land the extract again with its rows",
        )]);
    }
    crate::progress::phase("checking values");
    check_values(table, &extract)?;
    Ok(extract)
}

/// The file's bytes, decompressed when they are gzip or zstd (known by their magic bytes, so the
/// name does not matter: `people.csv.gz`, `people.csv.zst` or a renamed file read the same).
fn decompress(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, Vec<Problem>> {
    use std::io::Read;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| {
                vec![Problem::file(format!(
                    "a gzip file that does not decompress ({e}): land the whole file again"
                ))]
            })?;
        return Ok(out.into());
    }
    if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let out = zstd::stream::decode_all(bytes).map_err(|e| {
            vec![Problem::file(format!(
                "a zstd file that does not decompress ({e}): land the whole file again"
            ))]
        })?;
        return Ok(out.into());
    }
    Ok(bytes.into())
}

/// A file of another format than the table's (a Parquet file on a CSV table reads as binary
/// junk otherwise), named as such.
fn wrong_format(format: FileFormat, bytes: &[u8]) -> Option<Problem> {
    let parquet = bytes.starts_with(b"PAR1");
    let name = |f: FileFormat| match f {
        FileFormat::Csv => "csv",
        FileFormat::Parquet => "parquet",
        FileFormat::Jsonl => "jsonl",
    };
    match (format, parquet) {
        (FileFormat::Parquet, false) if !bytes.is_empty() => Some(Problem::file(
            "not a Parquet file (Parquet files start with the bytes PAR1): land the table's \
             Parquet extract, or set `format:` in its YAML to the file's format (csv, jsonl)",
        )),
        (FileFormat::Csv | FileFormat::Jsonl, true) => Some(Problem::file(format!(
            "this is a Parquet file, but the table's format is {}: set `format: parquet` in its \
             YAML, or land the extract as {}",
            name(format),
            name(format)
        ))),
        _ => None,
    }
}

/// One JSON object whose keys are all different: `{"a": 1, "a": 2}` is refused, not read as
/// its last value.
struct UniqueKeys(serde_json::Map<String, serde_json::Value>);

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = UniqueKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<UniqueKeys, A::Error> {
                let mut out = serde_json::Map::new();
                while let Some((k, v)) = m.next_entry::<String, serde_json::Value>()? {
                    if out.contains_key(&k) {
                        return Err(serde::de::Error::custom(format!(
                            "the key \"{k}\" appears twice in this object: send it once"
                        )));
                    }
                    out.insert(k, v);
                }
                Ok(UniqueKeys(out))
            }
        }
        d.deserialize_map(Keys)
    }
}

/// What a file is read against: its table, and the columns the lake keeps that the config no
/// longer declares.
struct Shape<'a> {
    table: &'a TableConfig,
    retired: &'a BTreeSet<String>,
}

impl Shape<'_> {
    /// How many text columns an extract has (the declared ones, and `_rescued`).
    fn width(&self) -> usize {
        self.table.columns.len() + usize::from(self.rescues())
    }

    fn rescues(&self) -> bool {
        self.table.schema_change == SchemaChangePolicy::Rescue
    }
}

/// Where each declared column is in a file (None: absent, read as NULL), and the file's columns
/// kept in `_rescued`.
struct Header {
    order: Vec<Option<usize>>,
    rescued: Vec<(usize, String)>,
}

/// Maps file column names to declared columns. Under `schema_change: fail` every declared column
/// must be there and nothing else; otherwise a nullable column may be absent (NULL), a retired
/// column is left out, and under `rescue` an undeclared one is kept in `_rescued`.
fn map_header(shape: &Shape, names: &[String], line: Option<u64>) -> Result<Header, Vec<Problem>> {
    let table = shape.table;
    let mut problems = Vec::new();
    let mut position: HashMap<String, usize> = HashMap::new();
    let mut rescued = Vec::new();
    for (i, raw) in names.iter().enumerate() {
        let name = snake_case(raw);
        if table.column(&name).is_none() {
            if shape.retired.contains(&name) && table.schema_change != SchemaChangePolicy::Fail {
                continue;
            }
            if shape.rescues() {
                rescued.push((i, raw.clone()));
                continue;
            }
            let hint =
                floe_config::did_you_mean(&name, table.columns.iter().map(|c| c.name.as_str()));
            problems.push(Problem {
                line,
                column: Some(raw.clone()),
                message: format!(
                    "column '{raw}' is not declared for {}{hint}: add it to {} (or set \
                     schema_change: rescue to keep undeclared columns in _rescued), or drop it \
                     from the extract",
                    table.qualified_name(),
                    table.file.display()
                ),
            });
        } else if position.insert(name.clone(), i).is_some() {
            problems.push(Problem {
                line,
                column: Some(raw.clone()),
                message: format!("column '{name}' appears twice"),
            });
        }
    }
    let mut order = Vec::new();
    for c in &table.columns {
        match position.get(&c.name) {
            Some(i) => order.push(Some(*i)),
            None if c.nullable && table.schema_change != SchemaChangePolicy::Fail => {
                order.push(None)
            }
            None => {
                let what = if table.primary_key.contains(&c.name) {
                    "primary key column"
                } else if !c.nullable {
                    "required column"
                } else {
                    "column"
                };
                let why = if table.schema_change == SchemaChangePolicy::Fail && c.nullable {
                    "schema_change: fail asks for every declared column"
                } else {
                    "it cannot be NULL"
                };
                problems.push(Problem {
                    line,
                    column: Some(c.name.clone()),
                    message: format!(
                        "{what} '{}' is missing from the file ({why}, {})",
                        c.name,
                        table.file.display()
                    ),
                });
            }
        }
    }
    if problems.is_empty() {
        Ok(Header { order, rescued })
    } else {
        Err(problems)
    }
}

/// The `_rescued` value of a row: the undeclared columns as one JSON object, None when the file
/// has none (or all are empty).
fn rescued_json(pairs: impl Iterator<Item = (String, serde_json::Value)>) -> Option<String> {
    let obj: serde_json::Map<String, serde_json::Value> = pairs
        .filter(|(_, v)| !v.is_null() && v.as_str() != Some(""))
        .collect();
    (!obj.is_empty()).then(|| serde_json::Value::Object(obj).to_string())
}

fn read_csv(shape: &Shape, bytes: &[u8]) -> Result<Extract, Vec<Problem>> {
    let table = shape.table;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(false)
        .from_reader(bytes);
    crate::progress::measure(crate::progress::Unit::Bytes, Some(bytes.len() as u64));
    let mut records = reader.byte_records();
    let header = match records.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => {
            return Err(vec![Problem::at(
                1,
                None,
                format!("unreadable header: {e}"),
            )]);
        }
        None => return Err(vec![Problem::file("the file is empty")]),
    };
    let mut names = Vec::new();
    for (i, f) in header.iter().enumerate() {
        match std::str::from_utf8(f) {
            Ok(s) => names.push(s.to_owned()),
            Err(_) => {
                return Err(vec![Problem::at(
                    1,
                    None,
                    format!(
                        "header field {} is not UTF-8: save the file as UTF-8",
                        i + 1
                    ),
                )]);
            }
        }
    }
    let header = map_header(shape, &names, Some(1))?;
    // Each column straight into an Arrow builder: no string is allocated per value. The size
    // hint (one value per row, the file's bytes shared out) saves the regrowing.
    let rows_hint = bytes.iter().filter(|b| **b == b'\n').count();
    let mut values: Vec<StringBuilder> = (0..shape.width())
        .map(|_| StringBuilder::with_capacity(rows_hint, bytes.len() / shape.width().max(1)))
        .collect();
    let mut lines = Vec::new();
    let mut problems = Vec::new();
    // Line numbers as an editor shows them, from each record's byte offset (the csv crate's own
    // count is one short on CRLF files: it ends a record at the \r and starts the next at the
    // \n, which is counted here as the line break it is). Records come in order: counted once.
    let mut counted = (0usize, 1u64);
    let mut line_at = |byte: u64| -> u64 {
        let mut byte = usize::try_from(byte).unwrap_or(usize::MAX).min(bytes.len());
        if bytes.get(byte) == Some(&b'\n') {
            byte += 1;
        }
        if byte >= counted.0 {
            counted.1 += bytes[counted.0..byte]
                .iter()
                .filter(|b| **b == b'\n')
                .count() as u64;
            counted.0 = byte;
        }
        counted.1
    };
    let mut read = 0u64;
    for record in records {
        read += 1;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| line_at(p.byte()));
                let message = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => format!(
                        "{len} fields where the header has {expected_len}: check quoting and delimiters on this line"
                    ),
                    _ => format!("malformed CSV: {e}"),
                };
                problems.push(Problem {
                    line,
                    column: None,
                    message,
                });
                if problems.len() >= MAX_PROBLEMS {
                    break;
                }
                continue;
            }
        };
        let line = record.position().map_or(0, |p| line_at(p.byte()));
        if read.is_multiple_of(8192) {
            crate::progress::set(record.position().map_or(0, |p| p.byte()));
            crate::progress::rows(read);
        }
        let text = |i: usize, column: &str, problems: &mut Vec<Problem>| match std::str::from_utf8(
            record.get(i).unwrap_or_default(),
        ) {
            Ok(s) => Some(s),
            Err(e) => {
                problems.push(Problem::at(line, Some(column), format!(
                        "not UTF-8 text (invalid byte at offset {} of the value): save the file as UTF-8",
                        e.valid_up_to()
                    )));
                None
            }
        };
        for (c, i) in header.order.iter().enumerate() {
            let v = i.and_then(|i| text(i, &table.columns[c].name, &mut problems));
            values[c].append_option(v);
        }
        if shape.rescues() {
            let pairs: Vec<(String, serde_json::Value)> = header
                .rescued
                .iter()
                .filter_map(|(i, name)| {
                    text(*i, name, &mut problems).map(|v| (name.clone(), v.into()))
                })
                .collect();
            values[table.columns.len()].append_option(rescued_json(pairs.into_iter()));
        }
        lines.push(line);
        if problems.len() >= MAX_PROBLEMS {
            break;
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Extract {
        columns: values
            .iter_mut()
            .map(|b| std::sync::Arc::new(b.finish()) as ArrayRef)
            .collect(),
        lines,
    })
}

/// The extract of rows read value by value, unless a problem was found.
fn finish(
    values: Vec<Vec<Option<String>>>,
    lines: Vec<u64>,
    problems: Vec<Problem>,
) -> Result<Extract, Vec<Problem>> {
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Extract {
        columns: values
            .into_iter()
            .map(|v| std::sync::Arc::new(StringArray::from(v)) as ArrayRef)
            .collect(),
        lines,
    })
}

fn text_columns(
    shape: &Shape,
    batches: Vec<arrow_array::RecordBatch>,
    first_line: u64,
) -> Result<Extract, Vec<Problem>> {
    let Some(first) = batches.first() else {
        return Ok(Extract {
            columns: (0..shape.width())
                .map(|_| {
                    std::sync::Arc::new(StringArray::from(Vec::<Option<String>>::new())) as ArrayRef
                })
                .collect(),
            lines: Vec::new(),
        });
    };
    let names: Vec<String> = first
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let header = map_header(shape, &names, None)?;
    let n = batches.iter().map(|b| b.num_rows()).sum::<usize>();
    let as_text = |i: usize| -> Result<ArrayRef, Vec<Problem>> {
        let parts: Vec<ArrayRef> = batches
            .iter()
            .map(|b| cast_with_options(b.column(i), &DataType::Utf8, &CastOptions::default()))
            .collect::<Result<_, _>>()
            .map_err(|e| {
                vec![Problem::file(format!(
                    "cannot read column '{}' as text: {e}",
                    names[i]
                ))]
            })?;
        let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
        arrow_select::concat::concat(&refs).map_err(|e| vec![Problem::file(e.to_string())])
    };
    let mut columns = Vec::new();
    for i in &header.order {
        columns.push(match i {
            Some(i) => as_text(*i)?,
            None => arrow_array::new_null_array(&DataType::Utf8, n),
        });
    }
    if shape.rescues() {
        let texts: Vec<(String, ArrayRef)> = header
            .rescued
            .iter()
            .map(|(i, name)| as_text(*i).map(|a| (name.clone(), a)))
            .collect::<Result<_, _>>()?;
        let rows: StringArray = (0..n)
            .map(|r| {
                rescued_json(texts.iter().map(|(name, a)| {
                    let a = a.as_any().downcast_ref::<StringArray>().expect("text");
                    let v = if a.is_null(r) {
                        serde_json::Value::Null
                    } else {
                        a.value(r).into()
                    };
                    (name.clone(), v)
                }))
            })
            .collect();
        columns.push(std::sync::Arc::new(rows));
    }
    let n = n as u64;
    Ok(Extract {
        columns,
        lines: (first_line..first_line + n).collect(),
    })
}

fn read_parquet(shape: &Shape, bytes: &[u8]) -> Result<Extract, Vec<Problem>> {
    let data = bytes::Bytes::copy_from_slice(bytes);
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(data)
        .and_then(|b| b.build())
        .map_err(|e| vec![Problem::file(format!("not a readable Parquet file: {e}"))])?;
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| vec![Problem::file(format!("corrupt Parquet data: {e}"))])?;
    // Parquet has no lines: a row's "line" is its position, from 1.
    text_columns(shape, batches, 1)
}

fn read_jsonl(shape: &Shape, bytes: &[u8]) -> Result<Extract, Vec<Problem>> {
    let table = shape.table;
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64;
        vec![Problem::at(
            line,
            None,
            "not UTF-8 text: save the file as UTF-8",
        )]
    })?;
    // A byte-order mark is read past, as for CSV.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut values: Vec<Vec<Option<String>>> = vec![Vec::new(); shape.width()];
    let mut lines = Vec::new();
    let mut problems = Vec::new();
    crate::progress::measure(crate::progress::Unit::Bytes, Some(text.len() as u64));
    let mut read = 0u64;
    for (i, l) in text.lines().enumerate() {
        let line = i as u64 + 1;
        read += l.len() as u64 + 1;
        if line.is_multiple_of(8192) {
            crate::progress::set(read);
            crate::progress::rows(line);
        }
        if l.trim().is_empty() {
            continue;
        }
        let obj: serde_json::Map<String, serde_json::Value> = match serde_json::from_str(l) {
            Ok(UniqueKeys(o)) => o,
            Err(e) => {
                problems.push(Problem::at(line, None, format!("not a JSON object: {e}")));
                continue;
            }
        };
        let names: Vec<String> = obj.keys().cloned().collect();
        let header = match map_header(shape, &names, Some(line)) {
            Ok(h) => h,
            Err(p) => {
                problems.extend(p);
                continue;
            }
        };
        let by_name: HashMap<String, &serde_json::Value> =
            obj.iter().map(|(k, v)| (snake_case(k), v)).collect();
        for (c, col) in table.columns.iter().enumerate() {
            values[c].push(match by_name.get(&col.name) {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(v) => Some(v.to_string()),
            });
        }
        if shape.rescues() {
            values[table.columns.len()].push(rescued_json(
                header
                    .rescued
                    .iter()
                    .map(|(_, name)| (name.clone(), obj[name].clone())),
            ));
        }
        lines.push(line);
        if problems.len() >= MAX_PROBLEMS {
            break;
        }
    }
    finish(values, lines, problems)
}

/// The Arrow type standardise casts a column to (the same cast kernels DataFusion's CAST uses).
fn cast_target(t: ColumnType) -> Option<DataType> {
    match t {
        ColumnType::String | ColumnType::Boolean => None,
        ColumnType::Timestamp => Some(DataType::Timestamp(TimeUnit::Nanosecond, None)),
        other => Some(other.arrow()),
    }
}

/// Why casting `text` to `ty` would change the value, if it would.
fn lossy_reason(ty: ColumnType, text: &str) -> Option<String> {
    match ty {
        ColumnType::Decimal(p, s) => {
            let scale = usize::try_from(s).unwrap_or(0);
            let digits_lost = if text.contains(['e', 'E']) {
                // Exponent form (a Parquet double as text): lost when the value scaled by
                // 10^s is not whole.
                let v: f64 = text.parse().ok()?;
                let scaled = v * 10f64.powi(i32::from(s));
                (scaled - scaled.round()).abs() > 1e-6 * scaled.abs().max(1.0)
            } else {
                let fraction = text.split_once('.').map_or("", |(_, f)| f);
                fraction.chars().skip(scale).any(|c| c != '0')
            };
            digits_lost.then(|| {
                format!(
                    "has more decimal places than decimal({p},{s}) keeps (it would be rounded): \
                     declare a larger scale, or round it in the source"
                )
            })
        }
        ColumnType::Date => {
            let time = text.split_once(['T', ' ']).map(|(_, t)| t)?;
            let time = time.trim_end_matches('Z');
            time.chars()
                .any(|c| c.is_ascii_digit() && c != '0')
                .then(|| {
                    "has a time of day, which a date column would drop: declare the column \
                     timestamp, or send the date alone"
                        .to_owned()
                })
        }
        _ => None,
    }
}

const TRUE_WORDS: &[&str] = &["true", "t", "yes", "y", "1"];
const FALSE_WORDS: &[&str] = &["false", "f", "no", "n", "0"];

/// Values that standardise could not type, NULL keys, duplicate keys, bad cdc operations.
fn check_values(table: &TableConfig, x: &Extract) -> Result<(), Vec<Problem>> {
    let mut problems = Vec::new();
    // Values are checked trimmed, an empty one as no value; a column that needs neither (the
    // usual case) is checked as it is, without a copy.
    let cleaned: Vec<StringArray> = x
        .columns
        .iter()
        .map(|a| {
            let a = a
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("text columns");
            let untidy = |v: &str| {
                v.is_empty()
                    || v.starts_with(char::is_whitespace)
                    || v.ends_with(char::is_whitespace)
            };
            if a.iter().flatten().any(untidy) {
                a.iter()
                    .map(|v| v.map(str::trim).filter(|v| !v.is_empty()))
                    .collect()
            } else {
                a.clone()
            }
        })
        .collect();
    // Truncate markers of a cdc table: their key columns may be empty.
    let truncates: std::collections::HashSet<usize> = match &table.cdc {
        Some(cdc) if table.load == LoadKind::Cdc => match (
            &cdc.truncate,
            table
                .columns
                .iter()
                .position(|c| c.name == cdc.operation_column),
        ) {
            (Some(t), Some(c)) => (0..cleaned[c].len())
                .filter(|&r| cleaned[c].is_valid(r) && cleaned[c].value(r).eq_ignore_ascii_case(t))
                .collect(),
            _ => Default::default(),
        },
        _ => Default::default(),
    };
    for (c, col) in table.columns.iter().enumerate() {
        let values = &cleaned[c];
        let bad: Vec<usize> = match (col.ty, cast_target(col.ty)) {
            (ColumnType::Boolean, _) => (0..values.len())
                .filter(|&r| {
                    values.is_valid(r) && {
                        let v = values.value(r).to_ascii_lowercase();
                        !TRUE_WORDS.contains(&v.as_str()) && !FALSE_WORDS.contains(&v.as_str())
                    }
                })
                .collect(),
            (_, Some(target)) => {
                let typed = cast_with_options(
                    values,
                    &target,
                    &CastOptions {
                        safe: true,
                        ..Default::default()
                    },
                )
                .expect("casting text is supported for every column type");
                (0..values.len())
                    .filter(|&r| values.is_valid(r) && typed.is_null(r))
                    .collect()
            }
            _ => Vec::new(),
        };
        // Values the cast takes but changes: more decimal places than the column keeps, a time
        // of day in a date column. Refused rather than rounded or cut without a word.
        let lossy = (0..values.len())
            .filter(|r| values.is_valid(*r) && bad.binary_search(r).is_err())
            .filter_map(|r| lossy_reason(col.ty, values.value(r)).map(|why| (r, why)));
        for (r, why) in lossy.take(MAX_PROBLEMS) {
            problems.push(Problem::at(
                x.lines[r],
                Some(&col.name),
                format!("'{}' {why}", values.value(r)),
            ));
        }
        for r in bad.into_iter().take(MAX_PROBLEMS) {
            let value = values.value(r);
            if col.ty == ColumnType::Timestamp
                && crate::keys::parse_extract_ts(value)
                    .is_some_and(|t| !crate::keys::instant_in_range(t))
            {
                // A well-formed timestamp the engines cannot hold: say so, not "use ISO 8601".
                problems.push(Problem::at(
                    x.lines[r],
                    Some(&col.name),
                    format!(
                        "'{value}' is outside the timestamps floe stores ({})",
                        crate::keys::INSTANT_RANGE
                    ),
                ));
                continue;
            }
            problems.push(Problem::at(
                x.lines[r],
                Some(&col.name),
                format!(
                    "'{}' is not a valid {}{}",
                    value,
                    col.ty,
                    match col.ty {
                        ColumnType::Timestamp => " (use ISO 8601, e.g. 2026-11-01T06:00:00Z)",
                        ColumnType::Date => " (use YYYY-MM-DD)",
                        ColumnType::Boolean => " (use true/false, yes/no or 1/0)",
                        _ => "",
                    }
                ),
            ));
        }
        if !col.nullable {
            for r in (0..values.len())
                .filter(|&r| values.is_null(r) && !truncates.contains(&r))
                .take(MAX_PROBLEMS)
            {
                let what = if table.primary_key.contains(&col.name) {
                    "a primary key column"
                } else {
                    "declared nullable: false"
                };
                problems.push(Problem::at(
                    x.lines[r],
                    Some(&col.name),
                    format!("is empty but {} is {what}", col.name),
                ));
            }
        }
    }
    if let Some(cdc) = &table.cdc
        && table.load == LoadKind::Cdc
    {
        let c = table
            .columns
            .iter()
            .position(|c| c.name == cdc.operation_column)
            .expect("checked by config");
        let allowed = match &cdc.truncate {
            Some(t) => format!("I, U, D or {t} (a truncate)"),
            None => "I, U or D".to_owned(),
        };
        for r in 0..cleaned[c].len() {
            let ok = cleaned[c].is_valid(r)
                && (matches!(
                    cleaned[c].value(r).to_ascii_uppercase().as_str(),
                    "I" | "U" | "D"
                ) || truncates.contains(&r));
            if !ok {
                problems.push(Problem::at(
                    x.lines[r],
                    Some(&cdc.operation_column),
                    format!(
                        "'{}' is not a change operation: use {allowed}",
                        if cleaned[c].is_valid(r) {
                            cleaned[c].value(r)
                        } else {
                            ""
                        }
                    ),
                ));
            }
        }
    }
    if table.load == LoadKind::Full && table.dedupe_by.is_none() {
        let keys: Vec<usize> = table
            .primary_key
            .iter()
            .map(|k| {
                table
                    .columns
                    .iter()
                    .position(|c| &c.name == k)
                    .expect("checked")
            })
            .collect();
        // Keys compare as typed values, as silver will see them: `007` and `7` are one bigint key.
        let typed: Vec<ArrayRef> = keys
            .iter()
            .map(|&k| {
                cast_target(table.columns[k].ty)
                    .and_then(|target| {
                        cast_with_options(&cleaned[k], &target, &CastOptions::default()).ok()
                    })
                    .unwrap_or_else(|| std::sync::Arc::new(cleaned[k].clone()) as ArrayRef)
            })
            .collect();
        let mut report = |r: usize, first: u64, key: Vec<String>| {
            let shown: Vec<String> = table
                .primary_key
                .iter()
                .zip(&key)
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            problems.push(Problem::at(x.lines[r], None, format!(
                "duplicate key ({}) first seen on line {first}: a full extract has one row per key; \
                 fix the extract, or set dedupe_by in {} to keep the latest row",
                shown.join(", "),
                table.file.display()
            )));
            problems.len() < MAX_PROBLEMS
        };
        match typed.as_slice() {
            // One integer key (the usual case): hashed as a number.
            [k] if k.data_type().is_integer() => {
                let k = cast_with_options(k, &DataType::Int64, &CastOptions::default())
                    .expect("integers widen to bigint");
                let k = k
                    .as_any()
                    .downcast_ref::<arrow_array::Int64Array>()
                    .expect("bigint");
                let mut seen: FastMap<Option<i64>, u64> =
                    FastMap::with_capacity_and_hasher(k.len(), Default::default());
                for r in 0..k.len() {
                    let key = k.is_valid(r).then(|| k.value(r));
                    match seen.entry(key) {
                        std::collections::hash_map::Entry::Occupied(first) => {
                            let shown = key.map(|v| v.to_string()).unwrap_or_default();
                            if !report(r, *first.get(), vec![shown]) {
                                break;
                            }
                        }
                        std::collections::hash_map::Entry::Vacant(slot) => {
                            slot.insert(x.lines[r]);
                        }
                    }
                }
            }
            _ => {
                let texts: Vec<StringArray> = typed
                    .iter()
                    .zip(&keys)
                    .map(|(t, &k)| {
                        cast_with_options(t, &DataType::Utf8, &CastOptions::default())
                            .ok()
                            .and_then(|t| t.as_any().downcast_ref::<StringArray>().cloned())
                            .unwrap_or_else(|| cleaned[k].clone())
                    })
                    .collect();
                let mut seen: FastMap<Vec<&str>, u64> =
                    FastMap::with_capacity_and_hasher(x.rows(), Default::default());
                for r in 0..x.rows() {
                    let key: Vec<&str> = texts
                        .iter()
                        .map(|col| if col.is_valid(r) { col.value(r) } else { "" })
                        .collect();
                    if let Some(first) = seen.get(&key) {
                        let shown = key.iter().map(|v| (*v).to_owned()).collect();
                        if !report(r, *first, shown) {
                            break;
                        }
                    } else {
                        seen.insert(key, x.lines[r]);
                    }
                }
            }
        }
    }
    problems.truncate(MAX_PROBLEMS);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casts_that_would_change_a_value_are_named() {
        let d = ColumnType::Decimal(5, 2);
        assert!(lossy_reason(d, "1.999").unwrap().contains("decimal(5,2)"));
        assert!(lossy_reason(d, "1.5e-3").is_some());
        for fine in ["1.99", "1.990000", "12", "-3.1", "1.5e2"] {
            assert_eq!(lossy_reason(d, fine), None, "{fine}");
        }
        let date = ColumnType::Date;
        assert!(
            lossy_reason(date, "2026-11-01T06:00:00")
                .unwrap()
                .contains("time of day")
        );
        assert!(lossy_reason(date, "2026-11-01 00:30:00").is_some());
        for fine in [
            "2026-11-01",
            "2026-11-01T00:00:00",
            "2026-11-01 00:00:00.000Z",
        ] {
            assert_eq!(lossy_reason(date, fine), None, "{fine}");
        }
        assert_eq!(lossy_reason(ColumnType::Bigint, "1.5"), None);
    }

    #[test]
    fn headers_become_snake_case() {
        assert_eq!(snake_case("Person ID"), "person_id");
        assert_eq!(snake_case("personId"), "person_id");
        assert_eq!(snake_case(" date-of-birth "), "date_of_birth");
        assert_eq!(snake_case("risk_score"), "risk_score");
        assert_eq!(snake_case("Line1"), "line1");
    }
}
