#!/usr/bin/env python3
"""Data-driven configuration tests for `syncgate validate` (TAP output).

Bad inputs: run.py DIR
  Every DIR/*.yaml is one test. Comment lines at its top say how to run it:
    # expect: TEXT     stderr must contain TEXT (repeatable; at least one)
    # env: NAME=VALUE  set in an otherwise empty environment (repeatable)
    # args: ARGS       extra command-line arguments (shell-quoted)
    # generate: pad N  pad a copy of the file with comment lines to N bytes
  `syncgate validate -p FILE` must exit 104, print nothing on stdout and
  exactly one line, "syncgate: " + the message, on stderr.

Good profiles: run.py --good DIR
  Every DIR/*.yaml must validate (exit 0, empty stderr) with a key file
  supplied, never show the key, and its printed configuration must
  validate again to the same text.

The syncgate binary comes from the SYNCGATE environment variable.
"""
import os
import shlex
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


def run(syncgate, args, env):
    return subprocess.run(WRAPPER + [syncgate, "validate"] + args, env=env, capture_output=True,
                          timeout=TIMEOUT * (10 if WRAPPER else 1))


def directives(data):
    """The '# key: value' lines at the top of a case file."""
    out = {"expect": [], "env": [], "args": [], "generate": []}
    for raw in data.split(b"\n"):
        if not raw.startswith(b"#"):
            break
        line = raw[1:].strip().decode("utf-8", "replace")
        key, sep, value = line.partition(":")
        if sep and key in out:
            out[key].append(value.strip())
    return out


def check_bad(syncgate, path, tmp):
    with open(path, "rb") as f:
        data = f.read()
    d = directives(data)
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
        args += shlex.split(a)
    try:
        r = run(syncgate, args, base_env(d["env"]))
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
    if problems:
        problems.append(f"stderr was: {err.strip()!r}")
    return problems


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
    return problems


def main():
    syncgate = os.environ.get("SYNCGATE")
    if not syncgate:
        print("Bail out! SYNCGATE is not set")
        return 1
    good = sys.argv[1:2] == ["--good"]
    folder = sys.argv[2] if good else sys.argv[1]
    files = sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".yaml"))
    print(f"1..{len(files)}")
    failed = 0
    for i, path in enumerate(files, 1):
        with tempfile.TemporaryDirectory(prefix="syncgate-profiles-") as tmp:
            problems = (check_good if good else check_bad)(syncgate, path, tmp)
        name = os.path.basename(path)
        print(f"{'not ok' if problems else 'ok'} {i} - {name}")
        for p in problems:
            print(f"#   {p}")
        failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
