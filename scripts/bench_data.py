#!/usr/bin/env python3
"""The benchmark's data: a customer dimension and its daily full extracts (used by scripts/bench.sh).

    bench_data.py --rows N --out DIR [--seed S]
    bench_data.py --rows N --out DIR --landing-only


writes, in DIR (skipped when DIR/manifest.json says they were made with the same rows and seed):

  day0.csv, day0.parquet                 the first full extract: N customers
  day1_<pct>.csv, day1_<pct>.parquet     the next day's full extract, for pct in 0.1, 1 and 10:
                                         pct% of N keys changed, of which 60% updated, 20% deleted
                                         (missing from the extract) and 20% inserted (new keys)
  manifest.json                          rows, seed and the exact counts of each extract

--landing-only writes day0.csv alone (the landing benchmark's file: 20M rows are ~2.1 GiB), a
million rows at a time, so that its size is not bounded by this script's memory.

CSV and Parquet of an extract hold the same rows. Columns: customer_id (bigint, the key),
first_name, last_name, email, city, segment (strings), date_of_birth (date), credit_limit
(double, two decimals) and updated_at (timestamp, seconds). An updated customer gets a new
credit_limit, updated_at and, half the time, a new city, so every update really changes the row.
Rows are in key order; the values are drawn from a seeded generator, so a rerun writes the same
files. About 105 bytes a row as CSV (10M rows: ~1 GB), ~40 as Parquet.
"""

import argparse
import datetime
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

CHANGES = ["0.1", "1", "10"]  # percent of the keys changed from day 0 to day 1
SHARES = {"updated": 0.6, "deleted": 0.2, "inserted": 0.2}
DAY0 = datetime.datetime(2026, 11, 1, 6, 0, 0)
DAY1 = DAY0 + datetime.timedelta(days=1)

FIRST = ["Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "John", "Margaret",
         "Ken", "Radia", "Tim", "Sophie", "Linus", "Anita", "Dennis", "Hedy", "Claude"]
LAST = ["Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Backus",
        "Hamilton", "Thompson", "Perlman", "Lee", "Wilson", "Torvalds", "Borg", "Ritchie",
        "Lamarr", "Shannon"]
CITIES = ["London", "Leeds", "Manchester", "Bristol", "Cardiff", "Glasgow", "Edinburgh", "Belfast",
          "York", "Norwich", "Exeter", "Hull", "Derby", "Bath", "Oxford", "Cambridge"]
SEGMENTS = ["retail", "small business", "corporate", "public sector", "charity"]

# The table as floe declares it (tables/crm.yaml) and as the other tools are told to read it.
COLUMNS = [
    ("customer_id", "bigint"),
    ("first_name", "string"),
    ("last_name", "string"),
    ("email", "string"),
    ("city", "string"),
    ("segment", "string"),
    ("date_of_birth", "date"),
    ("credit_limit", "double"),
    ("updated_at", "timestamp"),
]
KEY = "customer_id"


def pick(rng, values, n):
    return pa.array(values).take(pa.array(rng.integers(0, len(values), n)))


def customers(rng, ids, at):
    """Rows for these ids, all with updated_at before `at`."""
    n = len(ids)
    first, last = pick(rng, FIRST, n), pick(rng, LAST, n)
    email = pc.binary_join_element_wise(
        pc.utf8_lower(first), pc.utf8_lower(last), pc.cast(pa.array(ids), pa.string()), ".")
    email = pc.binary_join_element_wise(email, "example.com", "@")
    dob = pa.array(np.datetime64("1940-01-01") + rng.integers(0, 60 * 365, n).astype("timedelta64[D]"))
    seconds = rng.integers(1, 3 * 365 * 86400, n).astype("timedelta64[s]")
    updated = pa.array(np.datetime64(at, "s") - seconds)
    return pa.table({
        "customer_id": pa.array(ids, pa.int64()),
        "first_name": first,
        "last_name": last,
        "email": email,
        "city": pick(rng, CITIES, n),
        "segment": pick(rng, SEGMENTS, n),
        "date_of_birth": pc.cast(dob, pa.date32()),
        "credit_limit": pa.array(np.round(rng.integers(5, 500, n) * 100.0 + rng.random(n), 2)),
        "updated_at": pc.cast(updated, pa.timestamp("s")),
    })


def day1(rng, day0, pct, at=DAY1):
    """The next day's full extract with pct% of the keys changed, and its counts (`at`: that
    extract's time; updated rows are stamped an hour before it)."""
    rows = day0.num_rows
    changed = max(1, round(rows * float(pct) / 100))
    n_upd = round(changed * SHARES["updated"])
    n_del = round(changed * SHARES["deleted"])
    n_ins = changed - n_upd - n_del
    chosen = rng.choice(rows, n_upd + n_del, replace=False)
    upd, dele = np.sort(chosen[:n_upd]), chosen[n_upd:]

    keep = np.ones(rows, dtype=bool)
    keep[dele] = False
    cols = {name: day0.column(name).combine_chunks() for name in day0.column_names}
    mask = np.zeros(rows, dtype=bool)
    mask[upd] = True
    mask_arr = pa.array(mask)
    # Every update moves credit_limit and updated_at; half of them also move the city.
    new_limit = pc.add(cols["credit_limit"], pa.array(np.full(rows, 250.0)))
    cols["credit_limit"] = pc.if_else(mask_arr, new_limit, cols["credit_limit"])
    moved = pa.array(mask & (rng.random(rows) < 0.5))
    cols["city"] = pc.if_else(moved, pick(rng, CITIES[::-1], rows), cols["city"])
    stamp = pa.scalar(at - datetime.timedelta(hours=1), pa.timestamp("s"))
    cols["updated_at"] = pc.if_else(mask_arr, stamp, cols["updated_at"])
    kept = pa.table(cols).filter(pa.array(keep))

    start = int(pc.max(day0.column(KEY)).as_py()) + 1
    new = customers(rng, np.arange(start, start + n_ins), at)
    table = pa.concat_tables([kept, new])
    return table, {"rows": table.num_rows, "updated": n_upd, "deleted": n_del, "inserted": n_ins}


def write(table, stem):
    pacsv.write_csv(table, f"{stem}.csv")
    pq.write_table(table, f"{stem}.parquet")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--landing-only", action="store_true",
                   help="write day0.csv alone, a million rows at a time")
    args = p.parse_args()

    manifest_path = args.out / "manifest.json"
    kind = "landing" if args.landing_only else "scd2"
    if manifest_path.exists():
        m = json.loads(manifest_path.read_text())
        if (m.get("rows") == args.rows and m.get("seed") == args.seed
                and m.get("kind", "scd2") == kind):
            print(f"data for {args.rows} rows already in {args.out}", file=sys.stderr)
            return
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    if args.landing_only:
        step = 1_000_000
        with pacsv.CSVWriter(args.out / "day0.csv", customers(rng, np.arange(1, 2), DAY0).schema) as w:
            for start in range(1, args.rows + 1, step):
                ids = np.arange(start, min(start + step, args.rows + 1))
                w.write_table(customers(rng, ids, DAY0))
        manifest_path.write_text(json.dumps(
            {"rows": args.rows, "seed": args.seed, "kind": kind, "columns": COLUMNS, "key": KEY,
             "day0": DAY0.isoformat() + "Z", "extracts": {"day0": {"rows": args.rows}}},
            indent=2) + "\n")
        size = (args.out / "day0.csv").stat().st_size
        print(f"wrote {args.out / 'day0.csv'}: {size / 2**20:.1f} MiB", file=sys.stderr)
        return
    day0 = customers(rng, np.arange(1, args.rows + 1), DAY0)
    write(day0, args.out / "day0")
    extracts = {"day0": {"rows": day0.num_rows}}
    for pct in CHANGES:
        t, counts = day1(rng, day0, pct)
        write(t, args.out / f"day1_{pct}")
        extracts[f"day1_{pct}"] = counts
    manifest = {"rows": args.rows, "seed": args.seed, "kind": kind, "columns": COLUMNS, "key": KEY,
                "day0": DAY0.isoformat() + "Z", "day1": DAY1.isoformat() + "Z",
                "extracts": extracts}
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    sizes = ", ".join(f"{f.name} {f.stat().st_size / 2**20:.1f} MiB"
                      for f in sorted(args.out.glob("day*")))
    print(f"wrote {args.out}: {sizes}", file=sys.stderr)


if __name__ == "__main__":
    main()
