#!/usr/bin/env python3
"""Measures the Lambda services' cold start and peak memory (used by scripts/bench-cold-start.sh).

For each run of each binary in --bin-dir: start a fresh Runtime API emulator
(scripts/lambda_runtime_emulator.py) on an ephemeral port, spawn the binary with a complete
environment (local engine, a fresh lake folder, a tiny project, AWS endpoints pointing at a closed
port so that any AWS call before the first poll would show), and measure

  cold start = time.monotonic() just before spawn -> the emulator receiving the first
               GET /2018-06-01/runtime/invocation/next (CLOCK_MONOTONIC in both);
  peak RSS   = VmHWM from /proc/<pid>/status just before the process is killed.

After the first poll, the run hands the function one empty SQS batch ({"Records": []}) and waits
for its response: proof that the process reached lambda_runtime's loop and works. So the peak RSS
covers init plus one empty invocation (VmHWM at the first poll is reported too).
Runs are interleaved across services (landing, standardise, audit, modelling, landing, ...);
--warmup runs per service come first and are not counted (they warm the page cache).
p90 is the nearest-rank percentile (with 10 runs: the 9th fastest).
"""

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lambda_runtime_emulator import Emulator  # noqa: E402

SERVICES = ["floe-landing", "floe-standardise", "floe-audit", "floe-modelling"]
PROJECT_FILES = {
    "floe.yaml": "name: bench\n",
    "tables/s.yaml": (
        "source: s\ntables:\n  t:\n    primary_key: [id]\n    columns:\n      id: {type: bigint}\n"
    ),
}
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens, any AWS call fails


def environment(binary, port, project_dir, lake_dir):
    keep = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TZ") if k in os.environ}
    return keep | {
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        # Lambda sets these; lambda_runtime panics without the first three.
        "AWS_LAMBDA_FUNCTION_NAME": binary.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{binary.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_REGION": "eu-west-2",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "FLOE_ENGINE": "local",
        "FLOE_LAKE_DIR": str(lake_dir),
        "FLOE_PROJECT_DIR": str(project_dir),
        "FLOE_LANDING_BUCKET": "landing",
        "FLOE_QUARANTINE_BUCKET": "quarantine",
        "FLOE_STANDARDISE_QUEUE_URL": f"{CLOSED}/q/standardise",
        "FLOE_AUDIT_QUEUE_URL": f"{CLOSED}/q/audit",
        "FLOE_MODELLING_QUEUE_URL": f"{CLOSED}/q/modelling",
        "FLOE_AWS_ENDPOINT_URL": CLOSED,
    }


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for {pid}")


def run_once(binary, project_dir, work, timeout):
    """One cold start: (cold start ms, VmHWM KiB at first poll, VmHWM KiB at the end)."""
    emu = Emulator(port=0).start()
    lake_dir = Path(tempfile.mkdtemp(prefix="lake-", dir=work))
    log_path = work / f"{binary.name}.log"
    with open(log_path, "wb") as log:
        env = environment(binary, emu.port, project_dir, lake_dir)
        t0 = time.monotonic()
        proc = subprocess.Popen([str(binary)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        first, waited = None, 0.0
        while first is None and waited < timeout and proc.poll() is None:
            first = emu.wait_first_poll(0.05)
            waited += 0.05
        first = first or emu.wait_first_poll(0)  # it may have polled, then exited
        if first is None:
            code = proc.poll()
            why = f"exited with {code}" if code is not None else f"no poll within {timeout} s"
            raise RuntimeError(f"{binary.name} never polled ({why}); its output:\n"
                               + log_path.read_text(errors="replace")[-3000:])
        hwm_at_poll = vm_hwm_kib(proc.pid)
        emu.invoke({"Records": []})
        if not emu.wait_answer(timeout) or not emu.responses:
            raise RuntimeError(f"{binary.name} did not answer the empty invocation: "
                               f"errors={emu.errors} init_errors={emu.init_errors}; output:\n"
                               + log_path.read_text(errors="replace")[-3000:])
        hwm_end = vm_hwm_kib(proc.pid)
        if proc.poll() is not None:
            raise RuntimeError(f"{binary.name} exited during the run")
        return (first - t0) * 1e3, hwm_at_poll, hwm_end
    finally:
        proc.kill()
        proc.wait()
        emu.stop()


def p90(values):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mib(n_bytes):
    return n_bytes / (1024 * 1024)


def main():
    p = argparse.ArgumentParser(description="Cold start and peak RSS of the Lambda services.")
    p.add_argument("--bin-dir", required=True, type=Path, help="folder with the four binaries")
    p.add_argument("--runs", type=int, default=10, help="measured runs per service (default 10)")
    p.add_argument("--warmup", type=int, default=1, help="uncounted runs per service (default 1)")
    p.add_argument("--timeout", type=float, default=60, help="seconds to wait for a poll")
    p.add_argument("--command", default=" ".join(sys.argv), help="the command to print")
    p.add_argument("--build-note", default="", help="how the binaries were built, to print")
    p.add_argument("--json", type=Path, help="also write the figures to this file as JSON")
    args = p.parse_args()

    binaries = [args.bin_dir.resolve() / s for s in SERVICES]
    missing = [str(b) for b in binaries if not os.access(b, os.X_OK)]
    if missing:
        sys.exit("missing binaries: " + ", ".join(missing))

    work = Path(tempfile.mkdtemp(prefix="floe-bench-"))
    project_dir = work / "project"
    for name, text in PROJECT_FILES.items():
        (project_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (project_dir / name).write_text(text)

    load_before = os.getloadavg()
    started = datetime.datetime.now(datetime.timezone.utc)
    results = {b.name: [] for b in binaries}
    for i in range(args.warmup + args.runs):
        for b in binaries:
            try:
                r = run_once(b, project_dir, work, args.timeout)
            except RuntimeError as e:
                sys.exit(f"bench failed: {e}")
            if i >= args.warmup:
                results[b.name].append(r)
        print(f"  round {i + 1}/{args.warmup + args.runs} done"
              + (" (warm-up, not counted)" if i < args.warmup else ""), file=sys.stderr)
    load_after = os.getloadavg()

    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print("## Lambda services: cold start and peak memory\n")
    print(f"- date: {started.strftime('%Y-%m-%d %H:%M UTC')}")
    print(f"- machine: {nproc} CPUs (nproc), {cpu_model()}, {platform.machine()}, "
          f"Linux {platform.release()}")
    print(f"- load average (1/5/15 min): before {' '.join(f'{x:.2f}' for x in load_before)}, "
          f"after {' '.join(f'{x:.2f}' for x in load_after)}")
    print(f"- command: `{args.command}`")
    if args.build_note:
        print(f"- binaries: {args.build_note}")
    print(f"- {args.runs} measured runs per service after {args.warmup} warm-up run(s), "
          "interleaved; cold start = spawn -> first GET /2018-06-01/runtime/invocation/next; "
          "peak RSS = VmHWM after the first poll and one empty SQS invocation; p90 = nearest rank\n")
    print("| service | binary size | cold start median (ms) | cold start p90 (ms) "
          "| peak RSS median (MiB) |")
    print("|---|---:|---:|---:|---:|")
    for b in binaries:
        rs = results[b.name]
        starts = [r[0] for r in rs]
        print(f"| {b.name} | {mib(b.stat().st_size):.1f} MiB | {statistics.median(starts):.1f} "
              f"| {p90(starts):.1f} | {statistics.median(r[2] for r in rs) / 1024:.1f} |")
    print("\nDetails (all runs polled and answered the empty invocation with a response):\n")
    for b in binaries:
        rs = results[b.name]
        starts = sorted(r[0] for r in rs)
        print(f"- {b.name}: cold start min {starts[0]:.1f} / max {starts[-1]:.1f} ms; "
              f"VmHWM at first poll median {statistics.median(r[1] for r in rs) / 1024:.1f} MiB, "
              f"at the end max {max(r[2] for r in rs) / 1024:.1f} MiB")
    if args.json:
        args.json.write_text(json.dumps({
            "runs": args.runs, "warmup": args.warmup, "build_note": args.build_note,
            "services": [{
                "service": b.name,
                "binary_mib": mib(b.stat().st_size),
                "median_ms": statistics.median(r[0] for r in results[b.name]),
                "p90_ms": p90([r[0] for r in results[b.name]]),
                "peak_rss_mib": statistics.median(r[2] for r in results[b.name]) / 1024,
            } for b in binaries],
        }, indent=2) + "\n")
    # The temp folder holds only the project, empty lakes and logs.
    subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
