//! The tables a piece of SQL names, found by a lexer rather than by searching text, and the
//! same SQL with those names turned into other relations (a Glue database's prefix, a snapshot
//! pin).
//!
//! SQL that reaches an engine is partly floe's (rendered from typed plans in this crate) and
//! partly the user's (gold models, audits, `floe query`). Reading a table at a snapshot is a
//! property of the *relation* (`silver_s.t FOR VERSION AS OF 42` on Athena), so the adapter
//! finds each relation here, decides per [`TableRef`] how to read it ([`At`]), and this module
//! renders it. The lexer knows string literals (`'it''s'`), quoted names (`"silver_s"."t"`),
//! and both comment forms, so a table name inside any of them is never touched.

use std::ops::Range;

use chrono::{DateTime, Utc};
use floe_core::TableRef;

use crate::athena::timestamp;
use crate::quote;

/// How one relation is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// One snapshot by id.
    Version(i64),
    /// The snapshot current at this instant.
    Timestamp(DateTime<Utc>),
    /// No rows, with the table's columns (the table was not yet published then).
    Nothing,
}

/// A table read at a point of its history, as Athena (Trino) writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// The physical table.
    pub table: TableRef,
    /// Which of its versions.
    pub at: At,
}

impl Read {
    /// The relation's SQL, to stand where the table's name stood.
    pub fn render(&self) -> String {
        let name = format!(
            "{}.{}",
            quote(&self.table.namespace),
            quote(&self.table.name)
        );
        match self.at {
            At::Version(id) => format!("{name} FOR VERSION AS OF {id}"),
            At::Timestamp(t) => format!("{name} FOR TIMESTAMP AS OF {}", timestamp(t)),
            At::Nothing => format!("(SELECT * FROM {name} WHERE FALSE)"),
        }
    }
}

/// One dotted name in SQL (`ns.t`, `"ns"."t"`, `t.col`, `ns.t.col`), with where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Path {
    /// The parts, unquoted.
    parts: Vec<String>,
    /// Each part's span in the text (quotes included).
    spans: Vec<Range<usize>>,
}

impl Path {
    fn span(&self) -> Range<usize> {
        self.spans[0].start..self.spans[self.spans.len() - 1].end
    }
}

/// Every dotted or single name in `sql`, outside literals, quoted text and comments.
fn paths(sql: &str) -> Vec<Path> {
    let bytes = sql.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut out = Vec::new();
    let mut current: Option<Path> = None;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        // One name part (bare or quoted), or the end of a path.
        let part = if c == b'"' {
            let mut j = i + 1;
            let mut name = String::new();
            loop {
                match bytes.get(j) {
                    None => break,
                    Some(b'"') if bytes.get(j + 1) == Some(&b'"') => {
                        name.push('"');
                        j += 2;
                    }
                    Some(b'"') => {
                        j += 1;
                        break;
                    }
                    Some(_) => {
                        let ch = sql[j..].chars().next().unwrap_or(' ');
                        name.push(ch);
                        j += ch.len_utf8();
                    }
                }
            }
            Some((name, i..j))
        } else if ident(c) && (i == 0 || !ident(bytes[i - 1])) {
            let mut j = i;
            while j < bytes.len() && ident(bytes[j]) {
                j += 1;
            }
            Some((sql[i..j].to_owned(), i..j))
        } else {
            None
        };
        if let Some((name, span)) = part {
            i = span.end;
            let continues = current
                .as_ref()
                .is_some_and(|p| p.spans.last().is_some_and(|s| s.end + 1 == span.start));
            let starts_with_digit = name.as_bytes().first().is_some_and(u8::is_ascii_digit)
                && !sql[span.clone()].starts_with('"');
            if continues {
                if let Some(p) = current.as_mut() {
                    p.parts.push(name);
                    p.spans.push(span);
                }
            } else {
                out.extend(current.take());
                if !starts_with_digit {
                    current = Some(Path {
                        parts: vec![name],
                        spans: vec![span],
                    });
                }
            }
            continue;
        }
        match c {
            // A dot continues the current path only if a name follows it at once.
            b'.' if current
                .as_ref()
                .is_some_and(|p| p.spans.last().is_some_and(|s| s.end == i)) => {}
            b'\'' => {
                out.extend(current.take());
                let mut j = i + 1;
                while j < bytes.len() {
                    if bytes[j] == b'\'' && bytes.get(j + 1) == Some(&b'\'') {
                        j += 2;
                    } else if bytes[j] == b'\'' {
                        break;
                    } else {
                        j += 1;
                    }
                }
                i = (j + 1).min(bytes.len());
                continue;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                out.extend(current.take());
                i = sql[i..].find('\n').map_or(bytes.len(), |k| i + k);
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                out.extend(current.take());
                i = sql[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |k| i + 2 + k + 2);
                continue;
            }
            _ => out.extend(current.take()),
        }
        i += 1;
    }
    out.extend(current);
    out
}

/// A table named in SQL: `namespace.table` where the namespace is one `is_namespace` accepts,
/// and the name is neither qualified further (`ns.t.col` is a column) nor part of a longer one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// The table.
    pub table: TableRef,
    /// Where its name stands in the text.
    pub span: Range<usize>,
}

/// The tables `sql` names, in order of appearance (a table named twice appears twice).
pub fn relations(sql: &str, is_namespace: &dyn Fn(&str) -> bool) -> Vec<Relation> {
    paths(sql)
        .into_iter()
        .filter(|p| p.parts.len() == 2 && is_namespace(&p.parts[0]))
        .filter_map(|p| {
            let table = TableRef::new(&p.parts[0], &p.parts[1]).ok()?;
            Some(Relation {
                table,
                span: p.span(),
            })
        })
        .collect()
}

/// The distinct tables `sql` names, in order of first appearance.
pub fn tables(sql: &str, is_namespace: &dyn Fn(&str) -> bool) -> Vec<TableRef> {
    let mut out: Vec<TableRef> = Vec::new();
    for r in relations(sql, is_namespace) {
        if !out.contains(&r.table) {
            out.push(r.table);
        }
    }
    out
}

/// `sql` with each relation `read` answers for replaced by the relation it returns; every other
/// byte as it was.
pub fn substitute(
    sql: &str,
    is_namespace: &dyn Fn(&str) -> bool,
    mut read: impl FnMut(&TableRef) -> Option<Read>,
) -> String {
    let mut out = String::with_capacity(sql.len() + 64);
    let mut done = 0;
    for r in relations(sql, is_namespace) {
        if let Some(with) = read(&r.table) {
            out.push_str(&sql[done..r.span.start]);
            out.push_str(&with.render());
            done = r.span.end;
        }
    }
    out.push_str(&sql[done..]);
    out
}

/// `sql` with every namespace qualifier (`silver_s.t`, `"silver_s"."t$snapshots"`,
/// `silver_s.t.col`) prefixed, as a deployment's Glue databases are; literals, comments, columns
/// (`x.col` where `x` is no namespace) and names after a dot are left alone.
pub fn prefix_namespaces(sql: &str, prefix: &str, is_namespace: &dyn Fn(&str) -> bool) -> String {
    let mut out = String::with_capacity(sql.len() + 32);
    let mut done = 0;
    for p in paths(sql) {
        if p.parts.len() >= 2 && is_namespace(&p.parts[0]) {
            let span = p.spans[0].clone();
            out.push_str(&sql[done..span.start]);
            if sql[span.clone()].starts_with('"') {
                out.push_str(&quote(&format!("{prefix}{}", p.parts[0])));
            } else {
                out.push_str(prefix);
                out.push_str(&p.parts[0]);
            }
            done = span.end;
        }
    }
    out.push_str(&sql[done..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn floe(ns: &str) -> bool {
        ns.starts_with("silver_") || ns.starts_with("bronze_") || ns == "gold"
    }

    fn t(s: &str) -> TableRef {
        s.parse().unwrap()
    }

    #[test]
    fn names_in_literals_comments_and_longer_names_are_not_relations() {
        let sql = "SELECT s.x, 'FROM silver_a.t' AS lit, silver_a.t.col -- JOIN gold.hidden\n\
                   FROM silver_a.t s /* gold.nope */ JOIN \"gold\".\"m\" USING (id) \
                   JOIN silver_a.t2 ON 1=1 JOIN xsilver_a.t ON 1=1, cat.silver_a.t3";
        let found: Vec<String> = relations(sql, &floe)
            .iter()
            .map(|r| format!("{}@{}", r.table, &sql[r.span.clone()]))
            .collect();
        assert_eq!(
            found,
            [
                "silver_a.t@silver_a.t",
                "gold.m@\"gold\".\"m\"",
                "silver_a.t2@silver_a.t2"
            ]
        );
    }

    #[test]
    fn a_substituted_relation_keeps_everything_around_it() {
        let sql = "SELECT * FROM silver_s.people p JOIN silver_s.people2 q ON 1=1 \
                   WHERE x = 'silver_s.people' AND (SELECT 1 FROM silver_s.people) = 1";
        let pinned = substitute(sql, &floe, |table| {
            (table == &t("silver_s.people")).then(|| Read {
                table: t("silver_s.people__data"),
                at: At::Version(7),
            })
        });
        assert_eq!(
            pinned,
            "SELECT * FROM \"silver_s\".\"people__data\" FOR VERSION AS OF 7 p JOIN silver_s.people2 q ON 1=1 \
             WHERE x = 'silver_s.people' AND (SELECT 1 FROM \"silver_s\".\"people__data\" FOR VERSION AS OF 7) = 1"
        );
    }

    #[test]
    fn reads_render_as_trino_writes_them() {
        let table = t("gold.m");
        let at = |at| {
            Read {
                table: table.clone(),
                at,
            }
            .render()
        };
        assert_eq!(at(At::Version(3)), "\"gold\".\"m\" FOR VERSION AS OF 3");
        assert_eq!(
            at(At::Timestamp("2026-11-30T10:00:00Z".parse().unwrap())),
            "\"gold\".\"m\" FOR TIMESTAMP AS OF TIMESTAMP '2026-11-30 10:00:00.000000'"
        );
        assert_eq!(
            at(At::Nothing),
            "(SELECT * FROM \"gold\".\"m\" WHERE FALSE)"
        );
    }

    #[test]
    fn namespaces_get_the_prefix_and_nothing_else_does() {
        let sql = "SELECT s.x, 'silver_a.t' AS lit FROM silver_a.t s JOIN \"bronze_a\".\"t$snapshots\" b \
                   ON s.gold = b.id JOIN gold.m USING (id) WHERE col.silver_b = 1 AND silver_a.t.c = 2 \
                   -- gold.x\n";
        assert_eq!(
            prefix_namespaces(sql, "floe_dev_", &floe),
            "SELECT s.x, 'silver_a.t' AS lit FROM floe_dev_silver_a.t s JOIN \"floe_dev_bronze_a\".\"t$snapshots\" b \
             ON s.gold = b.id JOIN floe_dev_gold.m USING (id) WHERE col.silver_b = 1 AND floe_dev_silver_a.t.c = 2 \
             -- gold.x\n"
        );
        assert_eq!(prefix_namespaces("SELECT 1", "p_", &floe), "SELECT 1");
    }

    #[test]
    fn an_unterminated_literal_or_comment_ends_the_text() {
        assert!(relations("SELECT 'silver_a.t", &floe).is_empty());
        assert!(relations("SELECT 1 /* silver_a.t", &floe).is_empty());
    }
}
