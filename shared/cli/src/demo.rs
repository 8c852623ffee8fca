//! `floe demo`: a generated project with two sources and six daily extracts (updates, deletes,
//! reappearing keys, cdc changes and one bad file), run through the whole local pipeline.

use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};

/// A small deterministic random generator (xorshift64*), so every demo run is the same.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

const FIRST: &[&str] = &[
    "Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "John", "Margaret", "Ken",
    "Radia", "Tim",
];
const LAST: &[&str] = &[
    "Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Backus", "Hamilton",
    "Thompson", "Perlman", "Lee",
];
const STREETS: &[&str] = &[
    "Analytical Row",
    "Bletchley Lane",
    "Compiler Court",
    "Shortest Path",
    "Lambda Close",
    "Kernel Street",
];
const KINDS: &[&str] = &["arrest", "charge", "court", "sentence", "release", "recall"];

pub const TABLES_NOMIS: &str = "\
source: nomis
description: Offender management (generated demo data)
tables:
  people:
    primary_key: [person_id]
    load: full
    deletes: invalidate
    columns:
      person_id: {type: bigint, nullable: false}
      first_name: {type: string}
      last_name: {type: string}
      date_of_birth: {type: date}
      risk_score: {type: 'decimal(5,2)'}
    generate:
      current: {}
      changes: {}
  addresses:
    primary_key: [address_id]
    load: full
    deletes: new_record
    columns:
      address_id: {type: bigint, nullable: false}
      person_id: {type: bigint, nullable: false}
      line1: {type: string}
      postcode: {type: string}
      is_primary: {type: boolean}
    generate:
      current: {exclude_deleted: true}
";

pub const TABLES_DELIUS: &str = "\
source: delius
description: Probation case events (generated demo data, change data capture)
tables:
  case_events:
    primary_key: [event_id]
    load: cdc
    deletes: new_record
    cdc: {operation_column: op, timestamp_column: changed_at}
    columns:
      event_id: {type: bigint, nullable: false}
      person_id: {type: bigint}
      kind: {type: string}
      op: {type: string}
      changed_at: {type: timestamp}
";

/// One extract file of the demo: table, extract time, file name, contents.
pub struct DemoFile {
    pub table: &'static str,
    pub extract_ts: DateTime<Utc>,
    pub name: String,
    pub body: String,
}

/// Generates the demo's extracts, in landing order.
pub fn generate(people: u64, days: i64) -> Vec<DemoFile> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let start: DateTime<Utc> = "2026-11-01T06:00:00Z".parse().expect("a valid instant");
    // person_id -> (first, last, dob, score, present)
    let mut persons: Vec<(u64, String, String, String, String, bool)> = (1..=people)
        .map(|id| {
            (
                id,
                rng.pick(FIRST).to_owned(),
                rng.pick(LAST).to_owned(),
                format!(
                    "19{:02}-{:02}-{:02}",
                    50 + rng.below(50),
                    1 + rng.below(12),
                    1 + rng.below(28)
                ),
                format!("{}.{:02}", rng.below(100), rng.below(100)),
                true,
            )
        })
        .collect();
    let mut addresses: Vec<(u64, u64, String, String, bool, bool)> = persons
        .iter()
        .map(|p| {
            (
                p.0 * 10,
                p.0,
                format!("{} {}", 1 + rng.below(99), rng.pick(STREETS)),
                format!("AB{} {}CD", rng.below(10), rng.below(10)),
                true,
                true,
            )
        })
        .collect();
    let mut next_event = 1u64;
    let mut live_events: Vec<(u64, u64, String)> = Vec::new();
    let mut files = Vec::new();
    for day in 0..days {
        let ts = start + Duration::days(day);
        if day > 0 {
            for p in persons.iter_mut() {
                if p.5 && rng.chance(3) {
                    p.5 = false; // deleted at source
                } else if !p.5 && rng.chance(30) {
                    p.5 = true; // comes back
                } else if rng.chance(6) {
                    p.4 = if rng.chance(10) {
                        String::new()
                    } else {
                        format!("{}.{:02}", rng.below(100), rng.below(100))
                    };
                } else if rng.chance(2) {
                    p.2 = rng.pick(LAST).to_owned();
                }
            }
            let n = persons.len() as u64;
            for id in n + 1..=n + people / 50 {
                persons.push((
                    id,
                    rng.pick(FIRST).to_owned(),
                    rng.pick(LAST).to_owned(),
                    "1990-01-01".into(),
                    "10.00".into(),
                    true,
                ));
                addresses.push((
                    id * 10,
                    id,
                    format!("{} {}", 1 + rng.below(99), rng.pick(STREETS)),
                    "ZZ1 1ZZ".into(),
                    true,
                    true,
                ));
            }
            for a in addresses.iter_mut() {
                if a.5 && rng.chance(2) {
                    a.5 = false;
                } else if rng.chance(4) {
                    a.2 = format!("{} {}", 1 + rng.below(99), rng.pick(STREETS));
                }
            }
        }
        let mut csv = String::from("person_id,first_name,last_name,date_of_birth,risk_score\n");
        for p in persons.iter().filter(|p| p.5) {
            let _ = writeln!(csv, "{},{},{},{},{}", p.0, p.1, p.2, p.3, p.4);
        }
        files.push(DemoFile {
            table: "nomis.people",
            extract_ts: ts,
            name: "people.csv".into(),
            body: csv,
        });

        let mut csv = String::from("Address ID,Person ID,Line1,Postcode,Is Primary\n");
        for a in addresses.iter().filter(|a| a.5) {
            let _ = writeln!(
                csv,
                "{},{},{},{},{}",
                a.0,
                a.1,
                a.2,
                a.3,
                if a.4 { "yes" } else { "no" }
            );
        }
        if day == 2 {
            // A bad delivery: one address id is not a number. It is quarantined; the fixed file
            // follows.
            let bad = csv.replacen("\n20,", "\n2O,", 1);
            files.push(DemoFile {
                table: "nomis.addresses",
                extract_ts: ts,
                name: "addresses_bad.csv".into(),
                body: bad,
            });
        }
        files.push(DemoFile {
            table: "nomis.addresses",
            extract_ts: ts,
            name: "addresses.csv".into(),
            body: csv,
        });

        let mut csv = String::from("event_id,person_id,kind,op,changed_at\n");
        for i in 0..people / 5 {
            let at = ts - Duration::hours(6) + Duration::seconds((i * 60) as i64);
            let at = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            if !live_events.is_empty() && rng.chance(25) {
                let idx = rng.below(live_events.len() as u64) as usize;
                let (id, person, _) = live_events[idx].clone();
                if rng.chance(30) {
                    live_events.swap_remove(idx);
                    let _ = writeln!(csv, "{id},{person},,D,{at}");
                } else {
                    let kind = rng.pick(KINDS).to_owned();
                    live_events[idx].2 = kind.clone();
                    let _ = writeln!(csv, "{id},{person},{kind},U,{at}");
                }
            } else {
                let person = 1 + rng.below(people);
                let kind = rng.pick(KINDS).to_owned();
                let _ = writeln!(csv, "{next_event},{person},{kind},I,{at}");
                live_events.push((next_event, person, kind));
                next_event += 1;
            }
        }
        files.push(DemoFile {
            table: "delius.case_events",
            extract_ts: ts,
            name: "case_events.csv".into(),
            body: csv,
        });
    }
    files
}

/// Writes the demo project's files (config only; extracts are landed by the caller).
pub fn write_project(dir: &Path, name: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("tables"))?;
    std::fs::write(
        dir.join("floe.yaml"),
        include_str!("../templates/floe.yaml").replace("{{name}}", name),
    )?;
    std::fs::write(dir.join("tables/nomis.yaml"), TABLES_NOMIS)?;
    std::fs::write(dir.join("tables/delius.yaml"), TABLES_DELIUS)?;
    // The gold half is the sample project's: templates, models, tests and macros.
    for f in crate::sample::FILES.iter().filter(|f| {
        ["templates/", "models/", "macros/", "tests/"]
            .iter()
            .any(|p| f.path.starts_with(p))
    }) {
        let path = dir.join(f.path);
        std::fs::create_dir_all(path.parent().expect("a folder"))?;
        std::fs::write(path, f.body)?;
    }
    Ok(())
}
