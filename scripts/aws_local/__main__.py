"""``python -m aws_local``: the stand-in's processes (``scripts/aws-local.sh`` drives them).

    serve --port P --trino http://127.0.0.1:T [--region R]
        moto on 127.0.0.1:P with Glue's optimistic concurrency and Athena on Trino; runs until
        killed. Prints ``ready`` once it answers.
    trino-config --etc DIR --data DIR --port T --moto http://127.0.0.1:P [--region R]
        writes Trino's etc/ for that moto endpoint.
    base --endpoint URL [--region R]
        the account-wide resources every client expects (the default database).
    project --dir PROJECT_DIR --endpoint URL [--region R] [--stage dev]
        the project's resources as the CDK stack names them, and its floe.yaml athena: settings.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from . import athena, glue, trino


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m aws_local", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="moto + Athena on Trino, in the foreground")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--trino", required=True, help="Trino's URL, e.g. http://127.0.0.1:8085")
    c = sub.add_parser("trino-config", help="write Trino's etc/ for a moto endpoint")
    c.add_argument("--etc", type=Path, required=True)
    c.add_argument("--data", type=Path, required=True)
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--moto", required=True)
    c.add_argument("--region", default=trino.REGION)
    c.add_argument("--heap", default="2G")
    b = sub.add_parser("base", help="the default database and the warehouse bucket")
    b.add_argument("--endpoint", required=True)
    b.add_argument("--region", default=trino.REGION)
    pr = sub.add_parser("project", help="a floe project's resources and floe.yaml settings")
    pr.add_argument("--dir", type=Path, required=True)
    pr.add_argument("--endpoint", required=True)
    pr.add_argument("--region", default=trino.REGION)
    pr.add_argument("--stage", default="dev")
    args = p.parse_args(argv)

    if args.cmd == "base":
        from . import project

        project.base(args.endpoint, args.region)
        return 0
    if args.cmd == "project":
        from . import project

        if not (args.dir / "floe.yaml").is_file():
            p.error(f"{args.dir}/floe.yaml not found: make the project first (floe init {args.dir})")
        made = project.create(args.dir, args.endpoint, args.region, args.stage)
        for k, v in made.items():
            print(f"  {k}: {v}")
        return 0

    if args.cmd == "trino-config":
        trino.write_config(args.etc, args.data, args.port, args.moto, args.region, heap=args.heap)
        return 0

    from moto.server import ThreadedMotoServer

    glue.install()
    athena.configure(args.trino)
    athena.install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    print("ready", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
