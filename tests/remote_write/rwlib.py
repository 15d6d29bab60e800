"""Helpers for remote-write tests: the decoding receiver, the driver, checks.

Stdlib only. Paths come from the environment (set by tests/remote_write/meson.build):
RWFIXTURE (the receiver), RWDRIVER (the rw_push driver). Reusable from other
test folders: import it with sys.path.insert(0, <this folder>).
"""
import atexit
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

STALE_BITS = "7ff0000000000002"
NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


_TMPDIRS = []


@atexit.register
def _cleanup():
    if not os.environ.get("RW_KEEP_TMP"):
        for d in _TMPDIRS:
            shutil.rmtree(d, ignore_errors=True)


class Skip(Exception):
    """Raised when a test cannot run here (exit status 77 for meson)."""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Fixture:
    """The decoding receiver: start(), records(), stop(). Use as a context manager."""

    def __init__(self, script="", port=None, default=None):
        self.dir = tempfile.mkdtemp(prefix="rwfixture-")
        _TMPDIRS.append(self.dir)  # removed at exit unless RW_KEEP_TMP is set
        self.log = os.path.join(self.dir, "pushes.jsonl")
        self.script, self.port, self.default = script, port, default
        self.proc = None
        self.started_wall_ms = None

    def start(self):
        port_file = os.path.join(self.dir, "port")
        cmd = [os.environ["RWFIXTURE"], "--log", self.log, "--port-file", port_file]
        if self.port:
            cmd += ["--port", str(self.port)]
        if self.script:
            cmd += ["--script", self.script]
        if self.default:
            cmd += ["--default", str(self.default)]
        self.proc = subprocess.Popen(cmd)
        deadline = time.monotonic() + 10
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("rwfixture did not start")
            time.sleep(0.01)
        with open(port_file) as f:
            self.port = int(f.read())
        self.started_wall_ms = time.time() * 1000
        return self

    @property
    def url(self):
        return "http://127.0.0.1:%d/api/v1/write" % self.port

    def records(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [json.loads(line) for line in f if line.strip()]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def driver_cmd(url, *args):
    return [os.environ["RWDRIVER"], "--url", url] + [str(a) for a in args]


def parse_driver(out, err):
    result = json.loads(out.strip().splitlines()[-1])
    logs = []
    for line in err.splitlines():
        try:
            logs.append(json.loads(line))
        except ValueError:
            pass
    return result, logs, err


def run_driver(url, *args, timeout=60):
    """Run the driver to completion: (result dict, log events, raw stderr)."""
    p = subprocess.run(driver_cmd(url, *args), capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError("rwdriver failed (%d): %s" % (p.returncode, p.stderr))
    return parse_driver(p.stdout, p.stderr)


def headers(rec):
    """Header name (lower case) -> list of values, as received."""
    h = {}
    for name, value in rec["headers"]:
        h.setdefault(name.lower(), []).append(value)
    return h


def labels(series):
    return dict(series["labels"])


def key(series):
    return tuple(tuple(p) for p in series["labels"])


def name(series):
    return labels(series).get("__name__")


def accepted(records):
    return [r for r in records if 200 <= r["status"] < 300]


def all_series(records):
    for r in records:
        for s in r.get("series") or []:
            yield r, s


def last_values(records, metric, **match):
    """Per series of metric matching labels: the last float value sent (accepted only)."""
    out = {}
    for r, s in all_series(accepted(records)):
        l = labels(s)
        if l.get("__name__") != metric or any(l.get(k) != v for k, v in match.items()):
            continue
        for smp in s["samples"]:
            if smp["bits"] != STALE_BITS:
                out[key(s)] = float(smp["v"])
    return out


def check(cond, msg, *args):
    if not cond:
        raise AssertionError(msg % args if args else msg)


def main(cases, argv):
    """Run cases[argv[1]]; exit 0 pass, 1 fail, 77 skip."""
    import sys
    import traceback
    case = argv[1] if len(argv) > 1 else None
    if case not in cases:
        print("usage: %s {%s}" % (argv[0], "|".join(sorted(cases))))
        return 2
    try:
        cases[case]()
    except Skip as e:
        print("SKIP: %s" % e)
        return 77
    except Exception:
        traceback.print_exc()
        return 1
    print("PASS: %s" % case)
    sys.stdout.flush()
    return 0
