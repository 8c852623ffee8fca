//! Reading a landed file into text columns, checked against its table config.
//!
//! One file (over 700 lines) because the three formats share one checking pass (header
//! mapping, types, keys, drift, the problem list and its limit); each format's reader is one
//! function here.
//!
//! Every problem names the line (file line, header = line 1) and column, says what is wrong and
//! what to do; a file with any problem is refused whole, so nothing half-valid reaches bronze.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;

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

/// Rows a landed file is read and checked in: whatever the file's size, landing holds a few
/// chunks of it at a time.
pub const CHUNK_ROWS: usize = 131_072;

/// Reads and checks a file of `table`'s format.
pub fn read(table: &TableConfig, bytes: &[u8]) -> Result<Extract, Vec<Problem>> {
    read_with(table, bytes, &BTreeSet::new())
}

/// [`read`], leaving out the file's columns named in `retired` (columns the lake keeps that the
/// config no longer declares: a source may still send them). The whole file in one extract,
/// for files that fit in memory; landing reads chunk by chunk ([`open`]).
pub fn read_with(
    table: &TableConfig,
    bytes: &[u8],
    retired: &BTreeSet<String>,
) -> Result<Extract, Vec<Problem>> {
    let chunks = open(
        table,
        retired,
        Box::new(std::io::Cursor::new(bytes.to_vec())),
        CHUNK_ROWS,
    )?;
    let mut parts = Vec::new();
    let mut problems = Vec::new();
    for chunk in chunks {
        match chunk {
            Ok(x) if problems.is_empty() => parts.push(x),
            Ok(_) => {}
            Err(p) => problems.extend(p),
        }
        if problems.len() >= MAX_PROBLEMS {
            break;
        }
    }
    if !problems.is_empty() {
        problems.truncate(MAX_PROBLEMS);
        return Err(problems);
    }
    let extract = Extract::concat(parts, Shape { table, retired }.width());
    if extract.rows() == 0 {
        return Err(vec![no_rows()]);
    }
    crate::progress::phase("checking values");
    Checker::new(table).check(&extract)?;
    Ok(extract)
}

/// The problem of a file with a header and no rows.
pub fn no_rows() -> Problem {
    Problem::file("the file has a header but no rows: land the extract again with its rows")
}

impl Extract {
    /// The chunks' rows as one extract of `width` columns.
    pub fn concat(parts: Vec<Extract>, width: usize) -> Extract {
        if parts.len() == 1 {
            return parts.into_iter().next().expect("one part");
        }
        let columns = (0..width)
            .map(|c| {
                let arrays: Vec<&dyn Array> = parts.iter().map(|p| p.columns[c].as_ref()).collect();
                if arrays.is_empty() {
                    arrow_array::new_empty_array(&DataType::Utf8)
                } else {
                    arrow_select::concat::concat(&arrays).expect("text columns concatenate")
                }
            })
            .collect();
        Extract {
            columns,
            lines: parts.into_iter().flat_map(|p| p.lines).collect(),
        }
    }
}

/// A landed file opened for reading: its rows come chunk by chunk, in file order, each row with
/// its file line. A chunk with problems comes as its problems (reading goes on past them, so a
/// report can list a file's problems); a problem that leaves the rest unreadable (undecodable
/// bytes, a corrupt Parquet page) ends the file.
pub struct Chunks {
    table: TableConfig,
    retired: BTreeSet<String>,
    source: Source,
    chunk_rows: usize,
    ended: bool,
}

enum Source {
    Csv(Box<CsvSource>),
    Parquet(Box<ParquetSource>),
    Jsonl(Box<JsonlSource>),
}

impl Iterator for Chunks {
    type Item = Result<Extract, Vec<Problem>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        let shape = Shape {
            table: &self.table,
            retired: &self.retired,
        };
        let (chunk, ended) = match &mut self.source {
            Source::Csv(s) => s.next(&shape, self.chunk_rows),
            Source::Parquet(s) => s.next(&shape),
            Source::Jsonl(s) => s.next(&shape, self.chunk_rows),
        };
        self.ended = ended;
        chunk
    }
}

/// Opens a file of `table`'s format (gzip or zstd compressed or not, known by its first
/// bytes) to read it chunk by chunk, `chunk_rows` rows at most to a chunk; refuses it at once
/// when its format, emptiness or header is wrong. Reading blocks: run it on a blocking thread.
pub fn open(
    table: &TableConfig,
    retired: &BTreeSet<String>,
    input: Box<dyn Read + Send>,
    chunk_rows: usize,
) -> Result<Chunks, Vec<Problem>> {
    let unreadable =
        |e: std::io::Error| vec![Problem::file(format!("the file cannot be read: {e}"))];
    let (head, input) = peek(input, |h| h.len() >= 4).map_err(unreadable)?;
    let compressed = head.starts_with(&[0x1f, 0x8b]) || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
    if compressed {
        // Progress counts the bytes read after decompression, whose total is not known.
        crate::progress::measure(crate::progress::Unit::Bytes, None);
    }
    let input: Box<dyn Read + Send> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(Decoded {
            inner: flate2::read::MultiGzDecoder::new(input),
            what: "gzip",
        })
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let decoder = zstd::stream::read::Decoder::new(input).map_err(unreadable)?;
        Box::new(Decoded {
            inner: decoder,
            what: "zstd",
        })
    } else {
        input
    };
    let content = |h: &[u8]| h.len() >= 4 && h.iter().any(|b| !b.is_ascii_whitespace());
    let (head, input) = peek(input, content).map_err(|e| vec![Problem::file(e.to_string())])?;
    if let Some(p) = wrong_format(table.format, &head) {
        return Err(vec![p]);
    }
    if head.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(vec![Problem::file(
            "the file is empty: land the extract again with its rows (an empty full extract would close every current version)",
        )]);
    }
    let shape = Shape { table, retired };
    let source = match table.format {
        FileFormat::Csv => Source::Csv(Box::new(CsvSource::open(&shape, without_bom(input)?)?)),
        FileFormat::Parquet => {
            Source::Parquet(Box::new(ParquetSource::open(&shape, input, chunk_rows)?))
        }
        FileFormat::Jsonl => Source::Jsonl(Box::new(JsonlSource {
            input: std::io::BufReader::with_capacity(1 << 20, without_bom(input)?),
            line: 0,
            read: 0,
            buf: Vec::new(),
        })),
    };
    Ok(Chunks {
        table: table.clone(),
        retired: retired.clone(),
        source,
        chunk_rows: chunk_rows.max(1),
        ended: false,
    })
}

/// Reads the start of `input` until `enough` says so (or the input ends, or 1 MiB was read)
/// and gives it back with a reader of the whole input, the start included.
fn peek(
    mut input: Box<dyn Read + Send>,
    enough: impl Fn(&[u8]) -> bool,
) -> std::io::Result<(Vec<u8>, Box<dyn Read + Send>)> {
    let mut head = Vec::new();
    let mut block = [0u8; 8192];
    while !enough(&head) && head.len() < (1 << 20) {
        let n = match input.read(&mut block) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        head.extend_from_slice(&block[..n]);
    }
    Ok((
        head.clone(),
        Box::new(std::io::Cursor::new(head).chain(input)),
    ))
}

/// The input past a UTF-8 byte-order mark, if it starts with one.
fn without_bom(input: Box<dyn Read + Send>) -> Result<Box<dyn Read + Send>, Vec<Problem>> {
    let (head, input) =
        peek(input, |h| h.len() >= 3).map_err(|e| vec![Problem::file(e.to_string())])?;
    if !head.starts_with(b"\xEF\xBB\xBF") {
        return Ok(input);
    }
    let mut input = input;
    let mut bom = [0u8; 3];
    input
        .read_exact(&mut bom)
        .map_err(|e| vec![Problem::file(e.to_string())])?;
    Ok(input)
}

/// A decompressing reader whose errors say what could not be decompressed.
struct Decoded<R> {
    inner: R,
    what: &'static str,
}

impl<R: Read> Read for Decoded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "a {} file that does not decompress ({e}): land the whole file again",
                    self.what
                ),
            )
        })
    }
}

/// A reader that notes where every line break it passes on is, so a record's file line can be
/// told from its byte offset while the parser reads ahead.
struct Lines<R> {
    inner: R,
    offset: u64,
    breaks: std::collections::VecDeque<u64>,
    before: u64,
}

impl<R: Read> Read for Lines<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let at = self.offset;
        self.breaks
            .extend(memchr::memchr_iter(b'\n', &buf[..n]).map(|i| at + i as u64));
        self.offset += n as u64;
        Ok(n)
    }
}

impl<R> Lines<R> {
    /// The file line of the byte at `offset` (1 = the first line), as an editor counts: a
    /// record the parser starts at the `\n` of a CRLF is on the line after it. Offsets must
    /// not go backwards.
    fn line_at(&mut self, offset: u64) -> u64 {
        while self.breaks.front().is_some_and(|b| *b <= offset) {
            self.breaks.pop_front();
            self.before += 1;
        }
        self.before + 1
    }
}

struct CsvSource {
    reader: csv::Reader<Lines<Box<dyn Read + Send>>>,
    header: Header,
    /// The file's column names, as its header has them.
    names: Vec<String>,
    /// Each record is read into this one, checked as UTF-8 as a whole.
    record: csv::StringRecord,
    read: u64,
}

impl CsvSource {
    fn open(shape: &Shape, input: Box<dyn Read + Send>) -> Result<Self, Vec<Problem>> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(false)
            .buffer_capacity(1 << 16)
            .from_reader(Lines {
                inner: input,
                offset: 0,
                breaks: Default::default(),
                before: 0,
            });
        let mut header = csv::ByteRecord::new();
        match reader.read_byte_record(&mut header) {
            Ok(true) => {}
            Ok(false) => return Err(vec![Problem::file("the file is empty")]),
            Err(e) => {
                return Err(vec![Problem::at(
                    1,
                    None,
                    format!("unreadable header: {e}"),
                )]);
            }
        }
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
        Ok(CsvSource {
            reader,
            header,
            names,
            record: csv::StringRecord::new(),
            read: 0,
        })
    }

    /// The name of the file's `field`th column: as declared (headers match declared names
    /// snake_cased), or as the header has it for a column kept in `_rescued`.
    fn field_name(&self, field: usize) -> String {
        if let Some((_, raw)) = self.header.rescued.iter().find(|(i, _)| *i == field) {
            return raw.clone();
        }
        self.names
            .get(field)
            .map_or_else(|| format!("field {}", field + 1), |n| snake_case(n))
    }

    /// The next chunk, and whether the file ended with it.
    fn next(
        &mut self,
        shape: &Shape,
        chunk_rows: usize,
    ) -> (Option<Result<Extract, Vec<Problem>>>, bool) {
        let table = shape.table;
        // Each column straight into an Arrow builder: no string is allocated per value.
        let mut values: Vec<StringBuilder> = (0..shape.width())
            .map(|_| StringBuilder::with_capacity(chunk_rows.min(1 << 20), 0))
            .collect();
        let mut lines = Vec::with_capacity(chunk_rows.min(1 << 20));
        let mut problems = Vec::new();
        let mut ended = false;
        let mut taken = 0usize;
        while taken < chunk_rows {
            taken += 1;
            match self.reader.read_record(&mut self.record) {
                Ok(true) => {}
                Ok(false) => {
                    ended = true;
                    break;
                }
                Err(e) => {
                    if let csv::ErrorKind::Io(io) = e.kind() {
                        problems.push(Problem::file(io.to_string()));
                        ended = true;
                        break;
                    }
                    let line = e
                        .position()
                        .map(|p| self.reader.get_mut().line_at(p.byte()));
                    if let csv::ErrorKind::Utf8 { err, .. } = e.kind() {
                        // The record is checked as a whole (one pass over its bytes); the
                        // field at fault is named.
                        problems.push(Problem {
                            line,
                            column: Some(self.field_name(err.field())),
                            message: format!(
                                "not UTF-8 text (invalid byte at offset {} of the value): save the file as UTF-8",
                                err.valid_up_to()
                            ),
                        });
                        if problems.len() >= MAX_PROBLEMS {
                            ended = true;
                            break;
                        }
                        continue;
                    }
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
                        ended = true;
                        break;
                    }
                    continue;
                }
            }
            self.read += 1;
            let record = &self.record;
            let byte = record.position().map_or(0, |p| p.byte());
            let line = self.reader.get_mut().line_at(byte);
            if self.read.is_multiple_of(8192) {
                crate::progress::set(byte);
                crate::progress::rows(self.read);
            }
            for (c, i) in self.header.order.iter().enumerate() {
                values[c].append_option(i.and_then(|i| record.get(i)));
            }
            if shape.rescues() {
                let pairs: Vec<(String, serde_json::Value)> = self
                    .header
                    .rescued
                    .iter()
                    .filter_map(|(i, name)| record.get(*i).map(|v| (name.clone(), v.into())))
                    .collect();
                values[table.columns.len()].append_option(rescued_json(pairs.into_iter()));
            }
            lines.push(line);
            if problems.len() >= MAX_PROBLEMS {
                ended = true;
                break;
            }
        }
        if !problems.is_empty() {
            return (Some(Err(problems)), ended);
        }
        if lines.is_empty() {
            return (None, true);
        }
        let columns = values
            .iter_mut()
            .map(|b| std::sync::Arc::new(b.finish()) as ArrayRef)
            .collect();
        (Some(Ok(Extract { columns, lines })), ended)
    }
}

struct JsonlSource {
    input: std::io::BufReader<Box<dyn Read + Send>>,
    line: u64,
    read: u64,
    buf: Vec<u8>,
}

impl JsonlSource {
    fn next(
        &mut self,
        shape: &Shape,
        chunk_rows: usize,
    ) -> (Option<Result<Extract, Vec<Problem>>>, bool) {
        use std::io::BufRead as _;
        let table = shape.table;
        let mut values: Vec<Vec<Option<String>>> = vec![Vec::new(); shape.width()];
        let mut lines = Vec::new();
        let mut problems = Vec::new();
        let mut ended = false;
        while lines.len() < chunk_rows {
            self.buf.clear();
            match self.input.read_until(b'\n', &mut self.buf) {
                Ok(0) => {
                    ended = true;
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    problems.push(Problem::file(e.to_string()));
                    ended = true;
                    break;
                }
            }
            self.line += 1;
            self.read += self.buf.len() as u64;
            let line = self.line;
            if line.is_multiple_of(8192) {
                crate::progress::set(self.read);
                crate::progress::rows(line);
            }
            let raw = self.buf.strip_suffix(b"\n").unwrap_or(&self.buf);
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let Ok(l) = std::str::from_utf8(raw) else {
                // Text past this point cannot be trusted to split into lines as written.
                return (
                    Some(Err(vec![Problem::at(
                        line,
                        None,
                        "not UTF-8 text: save the file as UTF-8",
                    )])),
                    true,
                );
            };
            if l.trim().is_empty() {
                continue;
            }
            let obj: serde_json::Map<String, serde_json::Value> = match serde_json::from_str(l) {
                Ok(UniqueKeys(o)) => o,
                Err(e) => {
                    problems.push(Problem::at(line, None, format!("not a JSON object: {e}")));
                    if problems.len() >= MAX_PROBLEMS {
                        ended = true;
                        break;
                    }
                    continue;
                }
            };
            let names: Vec<String> = obj.keys().cloned().collect();
            let header = match map_header(shape, &names, Some(line)) {
                Ok(h) => h,
                Err(p) => {
                    problems.extend(p);
                    if problems.len() >= MAX_PROBLEMS {
                        ended = true;
                        break;
                    }
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
                ended = true;
                break;
            }
        }
        if !problems.is_empty() {
            return (Some(Err(problems)), ended);
        }
        if lines.is_empty() {
            return (None, true);
        }
        let columns = values
            .into_iter()
            .map(|v| std::sync::Arc::new(StringArray::from(v)) as ArrayRef)
            .collect();
        (Some(Ok(Extract { columns, lines })), ended)
    }
}

struct ParquetSource {
    reader: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    header: Header,
    names: Vec<String>,
    next_line: u64,
}

impl ParquetSource {
    /// Parquet is read from its footer: the file is held (compressed, as delivered) and its
    /// rows decoded `chunk_rows` at a time.
    fn open(
        shape: &Shape,
        mut input: Box<dyn Read + Send>,
        chunk_rows: usize,
    ) -> Result<Self, Vec<Problem>> {
        let mut data = Vec::new();
        input
            .read_to_end(&mut data)
            .map_err(|e| vec![Problem::file(e.to_string())])?;
        let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            bytes::Bytes::from(data),
        )
        .map_err(|e| vec![Problem::file(format!("not a readable Parquet file: {e}"))])?;
        let names: Vec<String> = builder
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let header = map_header(shape, &names, None)?;
        let reader = builder
            .with_batch_size(chunk_rows.clamp(1, 1 << 20))
            .build()
            .map_err(|e| vec![Problem::file(format!("not a readable Parquet file: {e}"))])?;
        Ok(ParquetSource {
            reader,
            header,
            names,
            // Parquet has no lines: a row's "line" is its position, from 1.
            next_line: 1,
        })
    }

    fn next(&mut self, shape: &Shape) -> (Option<Result<Extract, Vec<Problem>>>, bool) {
        let batch = match self.reader.next() {
            None => return (None, true),
            Some(Err(e)) => {
                return (
                    Some(Err(vec![Problem::file(format!(
                        "corrupt Parquet data: {e}"
                    ))])),
                    true,
                );
            }
            Some(Ok(b)) => b,
        };
        let first = self.next_line;
        self.next_line += batch.num_rows() as u64;
        crate::progress::rows(self.next_line - 1);
        match text_columns(shape, &self.header, &self.names, &batch, first) {
            Ok(x) => (Some(Ok(x)), false),
            Err(p) => (Some(Err(p)), true),
        }
    }
}

/// One Parquet batch's declared columns as text (and its undeclared ones in `_rescued`).
fn text_columns(
    shape: &Shape,
    header: &Header,
    names: &[String],
    batch: &arrow_array::RecordBatch,
    first_line: u64,
) -> Result<Extract, Vec<Problem>> {
    let n = batch.num_rows();
    let as_text = |i: usize| -> Result<ArrayRef, Vec<Problem>> {
        cast_with_options(batch.column(i), &DataType::Utf8, &CastOptions::default()).map_err(|e| {
            vec![Problem::file(format!(
                "cannot read column '{}' as text: {e}",
                names[i]
            ))]
        })
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

/// The checks of a file's values, chunk by chunk: values standardise could not type, NULL keys,
/// bad cdc operations, and keys repeated anywhere in the file (the keys seen are remembered
/// across chunks).
pub struct Checker<'a> {
    table: &'a TableConfig,
    /// Integer keys seen, with the line each was first seen on.
    int_keys: FastMap<i64, u64>,
    /// Other keys seen, by a 128-bit hash of their values (two rows of different keys share
    /// one with a chance of about 2^-128 per pair), with the line each was first seen on.
    text_keys: FastMap<(u64, u64), u64>,
}

impl<'a> Checker<'a> {
    /// No rows checked yet.
    pub fn new(table: &'a TableConfig) -> Self {
        Checker {
            table,
            int_keys: FastMap::default(),
            text_keys: FastMap::default(),
        }
    }

    /// Checks the next chunk of the file's rows.
    pub fn check(&mut self, x: &Extract) -> Result<(), Vec<Problem>> {
        check_values(self.table, x, &mut self.int_keys, &mut self.text_keys)
    }
}

/// Values that standardise could not type, NULL keys, duplicate keys, bad cdc operations.
fn check_values(
    table: &TableConfig,
    x: &Extract,
    int_keys: &mut FastMap<i64, u64>,
    text_keys: &mut FastMap<(u64, u64), u64>,
) -> Result<(), Vec<Problem>> {
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
                let seen = int_keys;
                seen.reserve(k.len());
                for r in 0..k.len() {
                    // An empty or untyped key is a problem of its own (reported above).
                    if k.is_null(r) {
                        continue;
                    }
                    let key = k.value(r);
                    match seen.entry(key) {
                        std::collections::hash_map::Entry::Occupied(first) => {
                            if !report(r, *first.get(), vec![key.to_string()]) {
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
                use std::hash::BuildHasher as _;
                let seen = text_keys;
                seen.reserve(x.rows());
                let halves = (
                    foldhash::fast::FixedState::with_seed(0x5eed_0ff1_0e5e),
                    foldhash::fast::FixedState::with_seed(0xf10e_5eed_0ff1),
                );
                for r in 0..x.rows() {
                    let key: Vec<&str> = texts
                        .iter()
                        .map(|col| if col.is_valid(r) { col.value(r) } else { "" })
                        .collect();
                    let hash = (halves.0.hash_one(&key), halves.1.hash_one(&key));
                    match seen.entry(hash) {
                        std::collections::hash_map::Entry::Occupied(first) => {
                            let shown = key.iter().map(|v| (*v).to_owned()).collect();
                            if !report(r, *first.get(), shown) {
                                break;
                            }
                        }
                        std::collections::hash_map::Entry::Vacant(slot) => {
                            slot.insert(x.lines[r]);
                        }
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
