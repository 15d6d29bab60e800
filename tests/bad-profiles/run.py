#!/usr/bin/env python3
r"""Data-driven configuration tests for `syncgate validate` (TAP output).

Bad inputs: run.py DIR
  Every DIR/*.yaml is one test. Comment lines at its top say how to run it:
    # expect: TEXT     stderr must contain TEXT (repeatable; at least one)
    # absent: TEXT     stderr must not contain TEXT (a secret; repeatable)
    # env: NAME=VALUE  set in an otherwise empty environment (repeatable); {dir} in
                       VALUE is this directory (for a file beside the cases)
    # env-escaped: NAME=VALUE  the same with escapes in VALUE: \r, \n, and \xNN
                       for any byte (non-UTF-8 values; the file stays UTF-8)
    # args: ARGS       extra command-line arguments (shell-quoted)
    # args-escaped: ARGS  the same, then escapes in each argument decoded as
                       for env-escaped (line breaks, control bytes, non-UTF-8)
    # generate: pad N  pad a copy of the file with comment lines to N bytes
    # command: CMD     check with `syncgate CMD` instead of validate (for what
                       only load and run refuse, like a profile with nothing to load)
  `syncgate validate -p FILE` must exit 104, print nothing on stdout and
  exactly one line, "syncgate: " + the message, on stderr. Then `syncgate run`
  with the same inputs must do the same and send nothing: every HTTP client
  in syncgate honours http_proxy/https_proxy, so pointing them at a listening
  socket of ours catches any request to any URL of the case, without editing
  the case (a last test proves that a valid run is caught this way). Under
  valgrind (SYNCGATE_WRAPPER set) only validate runs: `run` adds no code to
  check there, and would double the time.

Good profiles: run.py --good DIR
  Every DIR/*.yaml must validate (exit 0, empty stderr) with a key file
  supplied, never show the key, and its printed configuration must
  validate again to the same text. A profile whose key file is not on this
  machine must fail without one in a single line naming KONG_KEY_FILE and
  `--set gateway.key_file=`, and validate with either.

The syncgate binary comes from the SYNCGATE environment variable.
"""
import codecs
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile

TIMEOUT = 30
BAD_EXIT = 104


def base_env(extra=()):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for item in extra:
        name, _, value = item.partition("=")
        env[name] = value
    return env


# `meson test --setup=valgrind` runs syncgate behind this (valgrind and its options).
WRAPPER = shlex.split(os.environ.get("SYNCGATE_WRAPPER", ""))


def run(syncgate, args, env, command="validate", timeout=TIMEOUT):
    return subprocess.run(WRAPPER + [syncgate, command] + args, env=env, capture_output=True,
                          timeout=timeout * (10 if WRAPPER else 1))


class Recorder:
    """A listening socket standing in for every server: counts who connected."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.setblocking(False)
        url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.env = {n: url for n in ("http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy",
                                     "ALL_PROXY")}

    def connections(self):
        """Connections made since the last call (the kernel queues them without accept)."""
        n = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return n
            conn.close()
            n += 1


def directives(data):
    """The '# key: value' lines at the top of a case file."""
    out = {"expect": [], "absent": [], "env": [], "env-escaped": [], "args": [],
           "args-escaped": [], "generate": [], "command": []}
    for raw in data.split(b"\n"):
        if not raw.startswith(b"#"):
            break
        line = raw[1:].strip().decode("utf-8", "replace")
        key, sep, value = line.partition(":")
        if sep and key in out:
            out[key].append(value.strip())
    for item in out.pop("env-escaped"):
        out["env"].append(unescape(item))
    out["args"] = [shlex.split(a) for a in out["args"]]
    out["args"] += [[unescape(w) for w in shlex.split(a)] for a in out.pop("args-escaped")]
    return out


def unescape(text):
    r"""\n, \r, \xNN... decoded; bytes, then surrogateescape: a \xff reaches syncgate as 0xff."""
    raw = codecs.escape_decode(text.encode("utf-8"))[0]
    return raw.decode("utf-8", "surrogateescape")


def check_sends_nothing(syncgate, args, env, err, recorder):
    """`syncgate run` with the same inputs: 104, the same message, and not one connection."""
    problems = []
    recorder.connections()
    try:
        r = run(syncgate, args, base_env(env + [f"{k}={v}" for k, v in recorder.env.items()]),
                command="run", timeout=10)
        if r.returncode != BAD_EXIT:
            problems.append(f"syncgate run: exit code {r.returncode}, expected {BAD_EXIT}")
        if r.stderr.decode("utf-8", "replace") != err:
            problems.append(f"syncgate run: stderr differs: {r.stderr.strip()[:300]!r}")
    except subprocess.TimeoutExpired:
        problems.append("syncgate run: still running after 10s (the input was accepted)")
    sent = recorder.connections()
    if sent:
        problems.append(f"syncgate run: {sent} connection(s) reached the recording proxy")
    return problems


def check_bad(syncgate, path, tmp, recorder):
    with open(path, "rb") as f:
        data = f.read()
    d = directives(data)
    d["env"] = [e.replace("{dir}", os.path.dirname(os.path.abspath(path))) for e in d["env"]]
    problems = []
    if not d["expect"]:
        return ["no '# expect:' line: this case could not fail"]
    target = path
    for gen in d["generate"]:
        kind, _, size = gen.partition(" ")
        if kind != "pad":
            return [f"unknown generate directive {gen!r}"]
        target = os.path.join(tmp, os.path.basename(path))
        line = b"# padding to push the profile over the size cap\n"
        with open(target, "wb") as f:
            f.write(data)
            f.write(line * (int(size) // len(line) + 1))
    args = ["-p", target]
    for a in d["args"]:
        args += a
    try:
        r = run(syncgate, args, base_env(d["env"]), command=(d["command"] or ["validate"])[0])
    except subprocess.TimeoutExpired:
        return [f"timed out after {TIMEOUT}s"]
    err = r.stderr.decode("utf-8", "replace")
    if r.returncode != BAD_EXIT:
        problems.append(f"exit code {r.returncode}, expected {BAD_EXIT}")
    if r.stdout:
        problems.append(f"stdout not empty: {r.stdout[:200]!r}")
    lines = err.splitlines()
    if len(lines) != 1 or not lines[0].startswith("syncgate: "):
        problems.append("stderr is not one 'syncgate: ...' line")
    for e in d["expect"]:
        if e not in err:
            problems.append(f"stderr lacks {e!r}")
    for e in d["absent"]:
        if e in err:
            problems.append(f"stderr shows {e!r}")

    if not WRAPPER:
        problems += check_sends_nothing(syncgate, args, d["env"], err, recorder)
    if problems:
        problems.append(f"stderr was: {err.strip()!r}")
    return problems


CONTROL_PROFILE = """\
gateway:
  url: http://kong-proxy.invalid
  ready: {path: /health, timeout: 1s}
services:
  - {name: product, smoke_path: /api/products/health, url: http://product.invalid/health}
"""


def check_control(syncgate, tmp, recorder):
    """A valid profile run the same way must reach the recorder: the detector works."""
    path = os.path.join(tmp, "valid.yaml")
    with open(path, "w") as f:
        f.write(CONTROL_PROFILE)
    recorder.connections()
    env = base_env([f"{k}={v}" for k, v in recorder.env.items()])
    try:
        r = run(syncgate, ["-p", path], env, command="run", timeout=20)
    except subprocess.TimeoutExpired:
        return ["syncgate run of a valid profile did not end in 20s"]
    if recorder.connections() == 0:
        return [f"a valid run (exit {r.returncode}) made no connection: the zero-requests "
                "check could not fail"]
    return []


def check_good(syncgate, path, tmp):
    key = "good-profile-key-do-not-print"
    key_file = os.path.join(tmp, "apikey")
    with open(key_file, "w") as f:
        f.write(key + "\n")
    args = ["-p", path, "--set", "gateway.key_file=" + key_file]
    r = run(syncgate, args, base_env())
    out = r.stdout.decode("utf-8", "replace")
    if r.returncode != 0 or r.stderr:
        return [f"exit code {r.returncode}, stderr {r.stderr.decode(errors='replace').strip()!r}"]
    problems = []
    if key in out:
        problems.append("the gateway key appears in the output")
    if "# key: <redacted>" not in out:
        problems.append("the output does not mention the (redacted) key")
    again = os.path.join(tmp, "again.yaml")
    with open(again, "w") as f:
        f.write(out)
    r2 = run(syncgate, ["-p", again], base_env())
    if r2.returncode != 0:
        problems.append("printed configuration does not validate: "
                        + r2.stderr.decode(errors="replace").strip())
    else:
        body = [ln for ln in out.splitlines() if not ln.lstrip().startswith("#")
                and "key_file" not in ln]
        body2 = [ln for ln in r2.stdout.decode().splitlines()
                 if not ln.lstrip().startswith("#") and "key_file" not in ln]
        if body != body2:
            problems.append("printed configuration changes when validated again")
    problems += check_key_hint(syncgate, path, key_file, key)
    return problems


def check_key_hint(syncgate, path, key_file, key):
    """A shipped profile whose key file (a mounted Secret) is not on this machine: plain
    `validate -p` fails in one line that names both ways on, and both ways work."""
    with open(path, encoding="utf-8") as f:
        m = re.search(r"^  key_file: (\S+)", f.read(), re.M)
    if not m or m.group(1) == "null" or os.path.exists(m.group(1)):
        return []
    problems = []
    r = run(syncgate, ["-p", path], base_env())
    err = r.stderr.decode("utf-8", "replace")
    if r.returncode != BAD_EXIT or err.count("\n") != 1:
        problems.append(f"without its key file: exit {r.returncode}, stderr {err!r}")
    for hint in ("KONG_KEY_FILE=FILE", "--set gateway.key_file=FILE",
                 "go without a key with --set gateway.key_file=\n"):
        if hint not in err:
            problems.append(f"without its key file, the message does not say {hint!r}: {err!r}")
    r = run(syncgate, ["-p", path], base_env(["KONG_KEY_FILE=" + key_file]))
    out = r.stdout.decode("utf-8", "replace")
    if r.returncode != 0 or f'key_file: "{key_file}"' not in out or key in out:
        problems.append(f"KONG_KEY_FILE: exit {r.returncode}, key file or key not as expected")
    r = run(syncgate, ["-p", path, "--set", "gateway.key_file="], base_env())
    if r.returncode != 0 or "  key_file: null\n" not in r.stdout.decode("utf-8", "replace"):
        problems.append(f"--set gateway.key_file=: exit {r.returncode}, "
                        + r.stderr.decode(errors="replace").strip())
    return problems


def odd_env_names(path):
    """Whether the case sets a variable whose name is not a shell identifier."""
    with open(path, "rb") as f:
        env = directives(f.read())["env"]
    return any(not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", e.partition("=")[0]) for e in env)


def main():
    syncgate = os.environ.get("SYNCGATE")
    if not syncgate:
        print("Bail out! SYNCGATE is not set")
        return 1
    good = sys.argv[1:2] == ["--good"]
    folder = sys.argv[2] if good else sys.argv[1]
    files = sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".yaml"))
    recorder = None if good else Recorder()
    print(f"1..{len(files) + (0 if good else 1)}")
    failed = 0
    for i, path in enumerate(files, 1):
        name = os.path.basename(path)
        if WRAPPER and not good and odd_env_names(path):
            # valgrind does not pass such variables on to the program it runs
            print(f"ok {i} - {name} # SKIP variable names valgrind drops")
            continue
        with tempfile.TemporaryDirectory(prefix="syncgate-profiles-") as tmp:
            if good:
                problems = check_good(syncgate, path, tmp)
            else:
                problems = check_bad(syncgate, path, tmp, recorder)
        print(f"{'not ok' if problems else 'ok'} {i} - {name}")
        for p in problems:
            print(f"#   {p}")
        failed += bool(problems)
    if not good and WRAPPER:
        print(f"ok {len(files) + 1} - control # SKIP no `syncgate run` under valgrind")
    elif not good:
        with tempfile.TemporaryDirectory(prefix="syncgate-profiles-") as tmp:
            problems = check_control(syncgate, tmp, recorder)
        print(f"{'not ok' if problems else 'ok'} {len(files) + 1} - "
              "control: a valid profile run the same way reaches the recording proxy")
        for p in problems:
            print(f"#   {p}")
        failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
