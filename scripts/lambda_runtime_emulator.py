#!/usr/bin/env python3
"""A tiny AWS Lambda Runtime API emulator (Python standard library only).

It serves the part of the Runtime API a custom runtime (`lambda_runtime`) uses, on 127.0.0.1:

  GET  /2018-06-01/runtime/invocation/next             -> the next invocation (held until one is queued)
  POST /2018-06-01/runtime/invocation/<id>/response    -> recorded
  POST /2018-06-01/runtime/invocation/<id>/error       -> recorded
  POST /2018-06-01/runtime/init/error                  -> recorded

It records the monotonic time (time.monotonic(), CLOCK_MONOTONIC: the same clock in every
process on the machine) of the first `next` request: that is when a function's cold start ends.

Command line (one invocation, then exit):

  scripts/lambda_runtime_emulator.py --port 9001 [--event FILE_OR_JSON]
  AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001 AWS_LAMBDA_FUNCTION_NAME=f AWS_LAMBDA_FUNCTION_VERSION=1 \
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1024 target/release/floe-landing   # in another shell (lambda_runtime
    # panics without those three variables, which Lambda sets; the function needs its own settings too)

It hands out one invocation (the SQS event given, or {"Records": []}), prints one JSON line per
thing that happens, and exits when the function answered (status 0 for a response, 1 for an
error). As a library (scripts/bench_cold_start.py): `Emulator(port=0)`, `.start()`,
`.wait_first_poll()`, `.invoke(payload)`, `.wait_answer()`, `.stop()`.
"""

import argparse
import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"
FUNCTION_ARN = "arn:aws:lambda:eu-west-2:123456789012:function:floe-emulated"
EMPTY_SQS_EVENT = {"Records": []}


class Emulator:
    """The Runtime API's state: invocations queued, polls seen, answers received."""

    def __init__(self, port=9001, deadline_s=30.0, log=None):
        self.cond = threading.Condition()
        self.queued = []  # payloads (bytes) not handed out yet
        self.first_poll = None  # time.monotonic() of the first GET .../invocation/next
        self.polls = 0
        self.responses = {}  # request id -> body (str)
        self.errors = {}  # request id -> body (str)
        self.init_errors = []  # bodies (str)
        self.deadline_s = deadline_s
        self.log = log or (lambda event: None)
        self.stopped = False
        self.server = _Server(("127.0.0.1", port), _handler(self))
        self.port = self.server.server_address[1]

    # --- driving it -----------------------------------------------------------------------
    def start(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        with self.cond:
            self.stopped = True
            self.cond.notify_all()  # releases any poll still held
        self.server.shutdown()
        self.server.server_close()

    def invoke(self, payload=EMPTY_SQS_EVENT):
        """Queues one invocation; the next (or a held) poll receives it."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        with self.cond:
            self.queued.append(body)
            self.cond.notify_all()

    def wait_first_poll(self, timeout):
        """The monotonic time of the first poll, or None if none came within `timeout` s."""
        with self.cond:
            self.cond.wait_for(lambda: self.first_poll is not None, timeout)
            return self.first_poll

    def wait_answer(self, timeout):
        """Waits for a response, an error or an init error; True if one came."""
        with self.cond:
            return self.cond.wait_for(self._answered, timeout)

    def _answered(self):
        return bool(self.responses or self.errors or self.init_errors)

    # --- the handler's side ---------------------------------------------------------------
    def next_invocation(self):
        """Called for each poll: held until an invocation is queued (None once stopped)."""
        with self.cond:
            self.polls += 1
            if self.first_poll is None:
                self.first_poll = time.monotonic()
                self.log({"event": "first_poll", "monotonic": self.first_poll})
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.queued or self.stopped)
            if self.stopped:
                return None
            return self.queued.pop(0)

    def record(self, kind, request_id, body):
        with self.cond:
            if kind == "response":
                self.responses[request_id] = body
            elif kind == "error":
                self.errors[request_id] = body
            else:
                self.init_errors.append(body)
            self.cond.notify_all()
        self.log({"event": kind, "request_id": request_id, "body": body})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A function killed mid-connection is normal here; anything else is worth a traceback.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def _handler(emulator):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the real Runtime API

        def log_message(self, *args):  # quiet: the emulator logs its own events
            pass

        def do_GET(self):
            if self.path != PREFIX + "/invocation/next":
                return self._reply(404, {"errorMessage": "unknown path " + self.path})
            payload = emulator.next_invocation()
            if payload is None:  # stopped while held
                self.close_connection = True
                return
            request_id = str(uuid.uuid4())
            deadline_ms = int((time.time() + emulator.deadline_s) * 1000)
            emulator.log({"event": "invoke", "request_id": request_id})
            self._reply(
                200,
                payload,
                {
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
                    "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;"
                    "Parent=0000000000000000;Sampled=0",
                },
            )

        def do_POST(self):
            body = self._body().decode("utf-8", "replace")
            parts = self.path[len(PREFIX) :].strip("/").split("/")
            if self.path.startswith(PREFIX) and parts == ["init", "error"]:
                kind, request_id = "init_error", None
            elif (
                self.path.startswith(PREFIX)
                and len(parts) == 3
                and parts[0] == "invocation"
                and parts[2] in ("response", "error")
            ):
                kind, request_id = parts[2], parts[1]
            else:
                return self._reply(404, {"errorMessage": "unknown path " + self.path})
            # Acknowledge first: whoever waits for the record may stop the function at once.
            self._reply(202, {"status": "OK"})
            emulator.record(kind, request_id, body)

        def _body(self):
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()  # the blank line after the last chunk
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()  # CRLF after each chunk
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _reply(self, status, body, headers=None):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

    return Handler


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=9001, help="port on 127.0.0.1 (default 9001)")
    p.add_argument(
        "--event",
        help='the invocation payload: a JSON file or inline JSON (default {"Records": []})',
    )
    p.add_argument("--timeout", type=float, default=300, help="give up after this many s")
    args = p.parse_args()

    payload = EMPTY_SQS_EVENT
    if args.event:
        text = args.event if args.event.lstrip().startswith("{") else open(args.event).read()
        payload = json.loads(text)

    def log(event):
        print(json.dumps(event), flush=True)

    emu = Emulator(args.port, log=log).start()
    log({"event": "listening", "runtime_api": f"127.0.0.1:{emu.port}"})
    emu.invoke(payload)
    answered = emu.wait_answer(args.timeout)
    emu.stop()
    if not answered:
        log({"event": "timeout", "polls": emu.polls})
        return 2
    return 0 if emu.responses else 1


if __name__ == "__main__":
    sys.exit(main())
