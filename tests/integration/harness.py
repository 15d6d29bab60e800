"""harness: helpers for syncgate's integration tests (Python 3 standard library only).

What a test script gets from here:
- Tap: TAP output, one "ok N - desc" line per assertion, the plan at the end,
  exit status 1 when anything failed (or an exception escaped).
- Fixture: the project's fixture server (env FIXTURE) on 127.0.0.1 with the
  given routes; waits for its port file, and is always stopped (context
  manager, atexit, SIGTERM from meson's timeout, and PR_SET_PDEATHSIG when
  the test process dies hard).
- write_profile()/to_yaml(): a profile in a temp directory.
- run_syncgate()/spawn_syncgate(): the binary (env SYNCGATE) with a clean
  environment, arguments and a timeout; Result holds the exit code, stdout,
  stderr, the parsed JSON log lines and the parsed summary.
- parse_logs(), parse_summary(), free_port(), header().

The environment passed to syncgate starts from os.environ without any
variable syncgate reads (GATEWAY_URL, *_SERVICE_URL, K6_PROMETHEUS_RW_*, ...),
so a developer's shell cannot change a test's outcome.
"""

import atexit
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

# Variables syncgate reads; removed from the inherited environment.
_SYNCGATE_ENV = re.compile(
    r"^(GATEWAY_URL|KONG_CONSUMER_HEADER|KONG_KEY_FILE|STAGES|ENVIRONMENT|TEST_TYPE|TESTID|"
    r"SYNCGATE_.*|K6_.*|[A-Z0-9_]+_SERVICE_URL)$")

_live_procs = []
_tmpdirs = []


def _cleanup():
    for p in list(_live_procs):
        _kill(p)
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)


def _kill(proc, grace=3.0):
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=grace)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            proc.kill()
            proc.wait()
    if proc in _live_procs:
        _live_procs.remove(proc)


def _on_sigterm(signum, frame):
    # meson's timeout sends SIGTERM: turn it into SystemExit so atexit runs
    raise SystemExit(128 + signum)


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, _on_sigterm)


def _die_with_parent():
    """preexec_fn: the child gets SIGKILL when this process dies, whatever kills it."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # best effort: atexit still covers the usual cases
        pass


def tempdir():
    """A fresh directory removed at exit."""
    d = tempfile.mkdtemp(prefix="syncgate-it-")
    _tmpdirs.append(d)
    return d


def free_port():
    """A port nothing listens on right now (bound, read, released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- TAP ----

class Tap:
    """TAP producer: ok(), eq(), contains(), skip(), diag(); done() prints the plan and exits."""

    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, desc, *diags):
        self.n += 1
        cond = bool(cond)
        if not cond:
            self.failed += 1
        desc = " ".join(str(desc).split())  # one line, whatever desc holds
        print("%sok %d - %s" % ("" if cond else "not ", self.n, desc), flush=True)
        if not cond:
            for d in diags:
                self.diag(d)
        return cond

    def eq(self, got, want, desc):
        return self.ok(got == want, desc, "got:  %r" % (got,), "want: %r" % (want,))

    def contains(self, haystack, needle, desc):
        return self.ok(haystack is not None and needle in haystack, desc,
                       "%r not found in:" % (needle,), _clip(haystack))

    def skip(self, desc, reason):
        self.n += 1
        print("ok %d - %s # SKIP %s" % (self.n, desc, reason), flush=True)

    def diag(self, msg):
        for line in str(msg).splitlines() or [""]:
            print("# " + line, flush=True)

    def done(self):
        print("1..%d" % self.n, flush=True)
        _cleanup()
        sys.exit(1 if self.failed or self.n == 0 else 0)

    def run(self, *cases):
        """Run each case(tap); an exception fails that case and the rest still run."""
        for case in cases:
            self.diag("--- %s" % case.__name__)
            try:
                case(self)
            except Exception:
                self.ok(False, "%s raised" % case.__name__, traceback.format_exc())
        self.done()


def _clip(s, n=4000):
    if s is None:
        return "<None>"
    s = str(s)
    return s if len(s) <= n else s[:n] + "\n... (%d more bytes)" % (len(s) - n)


# ---- fixture ----

class Fixture:
    """The fixture server (env FIXTURE) with routes; see tests/fixture/fixture.c for the rules.

    listen: addresses ("127.0.0.1:0" picks a free port); ports: the bound ports
    in the same order once started. Use as a context manager, or call stop().
    """

    def __init__(self, routes, listen=("127.0.0.1:0",), log=True, extra_args=(),
                 start_timeout=5.0):
        self.exe = os.environ["FIXTURE"]
        self.dir = tempdir()
        self.port_file = os.path.join(self.dir, "ports")
        self.log_path = os.path.join(self.dir, "requests.jsonl") if log else None
        self.stderr_path = os.path.join(self.dir, "stderr")
        args = [self.exe, "--port-file", self.port_file]
        for a in listen:
            args += ["--listen", a]
        for r in routes:
            args += ["--route", r]
        if self.log_path:
            args += ["--log", self.log_path]
        args += list(extra_args)
        self.args = args
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err,
                                         preexec_fn=_die_with_parent)
        _live_procs.append(self.proc)
        deadline = time.monotonic() + start_timeout
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("fixture did not start (%s): %s"
                                   % (" ".join(args), self.stderr()))
            time.sleep(0.01)
        with open(self.port_file) as f:
            self.ports = [int(p) for p in f.read().split()]

    def url(self, index=0, path=""):
        return "http://127.0.0.1:%d%s" % (self.ports[index], path)

    def requests(self):
        """Every request logged so far: the --log records, plus 'hdr' {lower name: value}."""
        out = []
        if not self.log_path or not os.path.exists(self.log_path):
            return out
        with open(self.log_path, encoding="utf-8") as f:
            for line in f:
                if not line.endswith("\n"):
                    break  # being written right now
                rec = json.loads(line)
                rec["hdr"] = {}
                for name, value in rec["headers"]:
                    rec["hdr"].setdefault(name.lower(), value)
                out.append(rec)
        return out

    def stderr(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        """SIGTERM, then SIGKILL after a grace period. Returns the exit code."""
        _kill(self.proc)
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def header(req, name):
    """First value of header name (any case) in a fixture log record, or None."""
    return req["hdr"].get(name.lower())


# ---- profiles ----

def _yaml_scalar(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v))  # a JSON string is a valid YAML double-quoted scalar


def to_yaml(v, indent=0):
    """Block-style YAML for dicts, lists and scalars (enough for profiles)."""
    pad = "  " * indent
    lines = []
    if isinstance(v, dict):
        for k, x in v.items():
            if isinstance(x, (dict, list)) and x:
                lines.append("%s%s:" % (pad, k))
                lines.append(to_yaml(x, indent + 1))
            elif isinstance(x, (dict, list)):
                lines.append("%s%s: %s" % (pad, k, "{}" if isinstance(x, dict) else "[]"))
            else:
                lines.append("%s%s: %s" % (pad, k, _yaml_scalar(x)))
    elif isinstance(v, list):
        for x in v:
            if isinstance(x, dict) and x:
                sub = to_yaml(x, indent + 1).split("\n")
                lines.append("%s- %s" % (pad, sub[0].lstrip()))
                lines.extend(sub[1:])
            elif isinstance(x, list) and x:
                lines.append("%s-" % pad)
                lines.append(to_yaml(x, indent + 1))
            else:
                lines.append("%s- %s" % (pad, _yaml_scalar(x)))
    else:
        lines.append(pad + _yaml_scalar(v))
    return "\n".join(lines)


def write_profile(profile, name="profile.yaml", directory=None):
    """Write profile (a dict, or YAML text) to a temp file; returns its path."""
    directory = directory or tempdir()
    path = os.path.join(directory, name)
    text = profile if isinstance(profile, str) else to_yaml(profile) + "\n"
    with open(path, "w") as f:
        f.write(text)
    return path


def write_file(text, name, directory=None):
    directory = directory or tempdir()
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(text)
    return path


# ---- syncgate ----

def parse_logs(stderr):
    """The JSON objects among stderr's lines (other lines ignored)."""
    out = []
    for line in stderr.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out


def parse_summary(stdout):
    """The ✓/✗ lines of a k6-style summary: [(passed, text)], text after the mark."""
    out = []
    for line in stdout.splitlines():
        s = line.strip()
        if s[:1] in ("✓", "✗"):
            out.append((s[0] == "✓", s[1:].strip()))
    return out


class Result:
    def __init__(self, args, rc, stdout, stderr, elapsed, timed_out):
        self.args = args
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.elapsed = elapsed
        self.timed_out = timed_out
        self.logs = parse_logs(stderr)
        self.summary = parse_summary(stdout)

    def events(self, name):
        return [e for e in self.logs if e.get("event") == name]

    def event(self, name):
        ev = self.events(name)
        return ev[0] if ev else None

    def check_mark(self, check):
        """True (✓), False (✗) or None (absent) for the summary line of check."""
        for passed, text in self.summary:
            if text == check or (text.startswith(check) and text[len(check)] in " .:"):
                return passed
        return None

    def explain(self):
        return "command: %s\nexit: %r%s\n--- stdout\n%s\n--- stderr\n%s" % (
            " ".join(self.args), self.rc, " (timed out)" if self.timed_out else "",
            _clip(self.stdout), _clip(self.stderr))


def syncgate_env(env=None):
    base = {k: v for k, v in os.environ.items() if not _SYNCGATE_ENV.match(k)}
    base.update(env or {})
    return base


# `meson test --setup=valgrind` runs syncgate behind this (valgrind and its options).
_WRAPPER = shlex.split(os.environ.get("SYNCGATE_WRAPPER", ""))


def syncgate_args(args):
    return _WRAPPER + [os.environ["SYNCGATE"]] + [str(a) for a in args]


def run_syncgate(args, env=None, timeout=30.0, cwd=None):
    """Run syncgate to completion (killed after timeout). Returns a Result."""
    argv = syncgate_args(args)
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, env=syncgate_env(env), cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=_die_with_parent)
    _live_procs.append(proc)
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        proc.kill()
        out, err = proc.communicate()
    _live_procs.remove(proc)
    return Result(argv, proc.returncode, out.decode("utf-8", "replace"),
                  err.decode("utf-8", "replace"), time.monotonic() - t0, timed_out)


class Spawned:
    """A running syncgate: signal() it, then finish() for the Result."""

    def __init__(self, args, env=None, cwd=None):
        self.argv = syncgate_args(args)
        self.t0 = time.monotonic()
        d = tempdir()
        # files, not pipes: nobody reads while it runs, and a full pipe would block it
        self.out_path = os.path.join(d, "stdout")
        self.err_path = os.path.join(d, "stderr")
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(self.argv, env=syncgate_env(env), cwd=cwd,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         preexec_fn=_die_with_parent)
        _live_procs.append(self.proc)

    def stderr_so_far(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def signal(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def finish(self, timeout=30.0):
        timed_out = False
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            self.proc.kill()
            self.proc.wait()
        if self.proc in _live_procs:
            _live_procs.remove(self.proc)
        with open(self.out_path, "rb") as out, open(self.err_path, "rb") as err:
            o, e = out.read(), err.read()
        return Result(self.argv, self.proc.returncode, o.decode("utf-8", "replace"),
                      e.decode("utf-8", "replace"), time.monotonic() - self.t0, timed_out)


def spawn_syncgate(args, env=None, cwd=None):
    return Spawned(args, env, cwd)


def wait_for(pred, timeout=5.0, step=0.01):
    """Poll pred() until true or timeout; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)
