#!/usr/bin/env python3
"""The static syncgate, alone in an empty root, as the Dockerfile ships it.

Modes (first argument):
  dockerfile  read the Dockerfile and .dockerignore: only instructions this
              test reproduces, in the expected shape (no root needed)
  chroot      build the static binary the way the Dockerfile does (the same
              script and arguments, in a copy of the build context filtered by
              .dockerignore), assemble the image's root filesystem, then in a
              chroot as uid 65532: `version`, `validate` of every shipped
              profile, a smoke run by host name (from the root's /etc/hosts)
              against the fixture server on 127.0.0.1, and `syncgate serve`:
              /healthz from outside, then the seed's `curl -X POST
              .../api/tests/run` with the image's own curl, from inside
  https       the same root; smoke over HTTPS against a server whose
              certificate is signed by a throwaway CA given by file
              (profile gateway.ca_file, and SSL_CERT_FILE), plus the control
              run without it, which must fail

Exit codes: 0 pass, 1 fail, 77 skip (chroot/https only: not root, or no
chroot). The first static build takes minutes; later runs reuse the
dependency cache of scripts/build-static.sh and the meson build directory.

Environment: SYNCGATE_SOURCE_ROOT, DELIVERY_WORKDIR (persistent work
directory), FIXTURE (tests/fixture/fixture).
"""

import fnmatch
import json
import os
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request

SRC = os.path.abspath(os.environ.get("SYNCGATE_SOURCE_ROOT")
                      or os.path.join(os.path.dirname(__file__), "..", ".."))
WORK = os.path.abspath(os.environ.get("DELIVERY_WORKDIR")
                       or os.path.join(SRC, "build-static-delivery"))
FIXTURE = os.environ.get("FIXTURE", "")
MAX_BYTES = 8 * 1024 * 1024
HOST = "kubestock.test"
USER = "65532:65532"
KEY = "test-runner-key-0123456789abcdef"
BUILD_TIMEOUT = 1700
RUN_TIMEOUT = 60

failures = 0
count = 0


def check(cond, name, detail=""):
    global failures, count
    count += 1
    if cond:
        print(f"ok {count} - {name}", flush=True)
    else:
        failures += 1
        print(f"not ok {count} - {name}", flush=True)
        for line in str(detail).splitlines()[-40:]:
            print(f"#   {line}", flush=True)
    return bool(cond)


def finish():
    print(f"# {count - failures}/{count} passed", flush=True)
    sys.exit(1 if failures else 0)


def skip(why):
    print(f"# SKIP {why}", flush=True)
    sys.exit(77)


# ---------------------------------------------------------------- Dockerfile

def read_dockerfile():
    """[(INSTRUCTION, argument text)] with continuations joined, comments dropped."""
    out, cur = [], ""
    with open(os.path.join(SRC, "Dockerfile"), encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not cur and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if line.endswith("\\"):
                cur += line[:-1] + " "
                continue
            cur += line
            word, _, rest = cur.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            cur = ""
    return out


class Plan:
    """What the Dockerfile does, in terms this test can reproduce."""
    script = None        # path inside the context, e.g. scripts/build-static.sh
    script_args = None   # arguments, with the stage's paths
    builddir = None
    rootfs = None
    cache_mount = None
    entrypoint = None
    cmd = None
    user = None


def parse_dockerfile():
    """Check the Dockerfile's shape and return a Plan (None if it is wrong)."""
    ins = read_dockerfile()
    plan = Plan()
    allowed = {"FROM", "COPY", "RUN", "USER", "ENTRYPOINT", "CMD"}
    extra = [i for i, _ in ins if i not in allowed]
    check(not extra, "Dockerfile uses only instructions the tests reproduce",
          f"not exercised by any test: {extra}")
    froms = [(n, a) for n, (i, a) in enumerate(ins) if i == "FROM"]
    if not check(len(froms) == 2, "Dockerfile has two stages", froms):
        return None
    m = re.fullmatch(r"debian:bookworm\s+AS\s+(\S+)", froms[0][1], re.I)
    if not check(m, "build stage is debian:bookworm AS <name>", froms[0][1]):
        return None
    stage = m.group(1)
    check(froms[1][1] == "scratch", "final stage is FROM scratch", froms[1][1])
    build = ins[froms[0][0] + 1:froms[1][0]]
    final = ins[froms[1][0] + 1:]

    check([i for i, _ in build] == ["COPY", "RUN"], "build stage: COPY the context, RUN the script",
          build)
    copy = [a for i, a in build if i == "COPY"]
    ctx_dest = None
    if copy:
        parts = copy[0].split()
        if check(len(parts) == 2 and parts[0] == ".", "build stage copies the whole context", copy[0]):
            ctx_dest = parts[1].rstrip("/")
    run = [a for i, a in build if i == "RUN"]
    if not run or not ctx_dest:
        return None
    words = shlex.split(run[0])
    while words and words[0].startswith("--"):
        opt = words.pop(0)
        mm = re.fullmatch(r"--mount=type=cache,target=(\S+)", opt)
        if check(mm, "RUN option is a cache mount", opt):
            plan.cache_mount = mm.group(1)
    if not check(words and words[0].startswith(ctx_dest + "/"),
                 "RUN calls a script from the context", run[0]):
        return None
    plan.script = os.path.relpath(words[0], ctx_dest)
    check(plan.script == "scripts/build-static.sh", "RUN calls scripts/build-static.sh", plan.script)
    plan.script_args = words[1:]
    args = dict(zip(plan.script_args[::2], plan.script_args[1::2]))
    check(sorted(args) == ["--builddir", "--rootfs"] and len(plan.script_args) == 4,
          "RUN passes --builddir and --rootfs only", plan.script_args)
    plan.builddir, plan.rootfs = args.get("--builddir"), args.get("--rootfs")
    if plan.cache_mount is not None:
        with open(os.path.join(SRC, "scripts", "build-static.sh"), encoding="utf-8") as f:
            check(f"cache={plan.cache_mount}\n" in f.read(),
                  "the cache mount is the script's default cache as root", plan.cache_mount)

    check([i for i, _ in final] == ["COPY", "USER", "ENTRYPOINT", "CMD"],
          "final stage: COPY the root filesystem, USER, ENTRYPOINT, CMD", final)
    fin = dict(final)
    check(fin.get("COPY") == f"--from={stage} {plan.rootfs}/ /",
          "final stage copies exactly the assembled root filesystem", fin.get("COPY"))
    plan.user = fin.get("USER")
    check(plan.user == USER, f"USER {USER}", plan.user)
    try:
        plan.entrypoint = json.loads(fin.get("ENTRYPOINT", "null"))
        plan.cmd = json.loads(fin.get("CMD", "null"))
    except ValueError as e:
        check(False, "ENTRYPOINT and CMD in exec (JSON) form", e)
        return None
    check(isinstance(plan.entrypoint, list) and len(plan.entrypoint) == 1,
          "ENTRYPOINT is the binary alone", plan.entrypoint)
    check(plan.cmd == ["run"], 'CMD ["run"]', plan.cmd)
    return plan


def dockerignore_patterns():
    pats = []
    with open(os.path.join(SRC, ".dockerignore"), encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            neg = line.startswith("!")
            pat = line[1:] if neg else line
            if re.search(r"\*\*|\[|\\", pat):
                raise ValueError(f".dockerignore pattern {line!r}: this test supports * and ? only")
            pats.append((neg, pat.strip("/")))
    return pats


def ignored(rel, pats):
    """Docker's rule: the last pattern matching the path or a parent decides."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    result = False
    for neg, pat in pats:
        depth = pat.count("/") + 1
        if any(p.count("/") + 1 == depth and fnmatch.fnmatchcase(p, pat) for p in prefixes):
            result = not neg
    return result


def sync_context(dest):
    """Copy the build context (source tree minus .dockerignore) to dest.

    Unchanged files keep their timestamps so the meson build there stays
    incremental; files gone from the context are removed.
    """
    pats = dockerignore_patterns()
    want = set()
    for root, dirs, files in os.walk(SRC):
        rel_root = os.path.relpath(root, SRC)
        rel_root = "" if rel_root == "." else rel_root + "/"
        # An ignored directory is skipped unless a ! pattern re-includes something inside it.
        dirs[:] = [d for d in dirs if d != ".git" and not (
            ignored(rel_root + d, pats)
            and not any(neg and pat.startswith(rel_root + d + "/") for neg, pat in pats))]
        for name in files:
            rel = rel_root + name
            if ignored(rel, pats):
                continue
            want.add(rel)
            s, d = os.path.join(SRC, rel), os.path.join(dest, rel)
            st = os.stat(s)
            try:
                dt = os.stat(d)
                if dt.st_size == st.st_size and int(dt.st_mtime) == int(st.st_mtime):
                    continue
            except FileNotFoundError:
                pass
            os.makedirs(os.path.dirname(d), exist_ok=True)
            shutil.copy2(s, d)
    for root, dirs, files in os.walk(dest, topdown=False):
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), dest)
            if rel not in want:
                os.unlink(os.path.join(root, name))
        if root != dest and not os.listdir(root):
            os.rmdir(root)
    return want


def mode_dockerfile():
    plan = parse_dockerfile()
    if plan:
        pats = dockerignore_patterns()
        for rel in ["meson.build", "meson_options.txt", "scripts/build-static.sh", "src/main.c",
                    "include/syncgate/config.h", "profiles/staging.yaml"]:
            check(not ignored(rel, pats), f".dockerignore keeps {rel}")
        for rel in [".git/config", "build/build.ninja", "tests/delivery/node_modules/x",
                    "manifests/base/kustomization.yaml"]:
            check(ignored(rel, pats), f".dockerignore drops {rel}")
    finish()


# ------------------------------------------------------------ chroot helpers

def can_chroot():
    if os.geteuid() != 0:
        return "not root"
    if not shutil.which("chroot"):
        return "no chroot command"
    r = subprocess.run(["chroot", "/", "true"], capture_output=True, timeout=30)
    if r.returncode != 0:
        return f"chroot does not work here: {r.stderr.decode(errors='replace').strip()}"
    return None


def build_root(plan, tmp):
    """Run the Dockerfile's build step locally; return the root filesystem path."""
    ctx = os.path.join(WORK, "context")
    os.makedirs(ctx, exist_ok=True)
    files = sync_context(ctx)
    check(plan.script in files, f"{plan.script} is in the build context")
    builddir = os.path.join(WORK, "static")
    rootfs = os.path.join(tmp, "rootfs")
    mapping = {plan.builddir: builddir, plan.rootfs: rootfs}
    args = [mapping.get(a, a) for a in plan.script_args]
    cmd = [os.path.join(ctx, plan.script)] + args
    print(f"# {' '.join(cmd)}", flush=True)
    t0 = time.monotonic()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=BUILD_TIMEOUT, env=dict(os.environ, CI="true"))
    out = r.stdout.decode(errors="replace")
    print(f"# static build: {time.monotonic() - t0:.1f} s", flush=True)
    for line in out.splitlines():
        if line.startswith("build-static:"):
            print(f"# {line}", flush=True)
    if not check(r.returncode == 0, "the Dockerfile's build step succeeds in the filtered context",
                 out):
        finish()
    return builddir, rootfs


def file_kind(path):
    return subprocess.run(["file", "-b", path], capture_output=True, text=True).stdout.strip()


def inspect_root(plan, builddir, rootfs):
    exe = plan.entrypoint[0]
    binary = os.path.join(rootfs, exe.lstrip("/"))
    check(os.path.isfile(binary) and os.access(binary, os.X_OK), f"ENTRYPOINT {exe} is in the root")
    kind = file_kind(binary)
    check("statically linked" in kind, "file says statically linked", kind)
    size = os.path.getsize(binary)
    print(f"# binary: {size} bytes stripped, {os.path.getsize(os.path.join(builddir, 'syncgate'))}"
          " unstripped", flush=True)
    check(size <= MAX_BYTES, f"stripped binary <= 8 MiB ({size} bytes)")
    check("not stripped" not in kind, "the image's binary is stripped", kind)
    check(os.stat(binary).st_uid == 0 and not os.stat(binary).st_mode & stat.S_IWOTH,
          "binary owned by root, not writable by the user")

    curl = os.path.join(rootfs, "usr/local/bin/curl")
    check("statically linked" in file_kind(curl) and os.access(curl, os.X_OK),
          "the image's curl (for kubectl exec ... curl) is static", file_kind(curl))
    expected = {exe.lstrip("/"), "usr/local/bin/curl", "etc/ssl/certs/ca-certificates.crt",
                "etc/passwd", "etc/group", "etc/nsswitch.conf"}
    expected |= {f"etc/syncgate/profiles/{p}" for p in os.listdir(os.path.join(SRC, "profiles"))
                 if p.endswith(".yaml")}
    present = set()
    for root, _, names in os.walk(rootfs):
        for n in names:
            present.add(os.path.relpath(os.path.join(root, n), rootfs))
    check(present == expected, "the root holds exactly the binary, curl, CA certificates, "
          "passwd/group, nsswitch.conf and the profiles",
          f"unexpected: {sorted(present - expected)}\nmissing: {sorted(expected - present)}")
    for p in (n for n in expected if n.startswith("etc/syncgate/profiles/")):
        with open(os.path.join(rootfs, p), "rb") as a, \
                open(os.path.join(SRC, "profiles", os.path.basename(p)), "rb") as b:
            check(a.read() == b.read(), f"{p} is profiles/{os.path.basename(p)}")
    with open(os.path.join(rootfs, "etc/passwd"), encoding="utf-8") as f:
        uid = plan.user.split(":")[0]
        check(any(line.split(":")[2] == uid for line in f if line.count(":") >= 6),
              f"/etc/passwd has uid {uid}")
    tmpdir = os.path.join(rootfs, "tmp")
    check(os.path.isdir(tmpdir) and stat.S_IMODE(os.stat(tmpdir).st_mode) == 0o1777, "/tmp 1777")


def add_test_files(rootfs):
    """What the cluster adds at run time: /etc/hosts, the Secret with the Kong key."""
    with open(os.path.join(rootfs, "etc/hosts"), "w", encoding="utf-8") as f:
        f.write(f"127.0.0.1 localhost {HOST}\n")
    keydir = os.path.join(rootfs, "var/run/secrets/kong")
    os.makedirs(keydir, exist_ok=True)
    with open(os.path.join(keydir, "apikey"), "w", encoding="utf-8") as f:
        f.write(KEY + "\n")
    os.chmod(os.path.join(keydir, "apikey"), 0o444)
    os.makedirs(os.path.join(rootfs, "etc/syncgate/test"), exist_ok=True)


def in_root(rootfs, plan, args, env=None, timeout=RUN_TIMEOUT):
    """Run the ENTRYPOINT with args in the chroot as the image's user."""
    cmd = [shutil.which("chroot"), f"--userspec={plan.user}", rootfs] + plan.entrypoint + args
    base = {"PATH": "/nonexistent"}  # nothing else from the host leaks in
    base.update(env or {})
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=base)
    except subprocess.TimeoutExpired as e:
        return 124, e.stdout or "", e.stderr or ""
    return r.returncode, r.stdout, r.stderr


def wait_port_file(path, proc, what):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read().split()
            if text:
                return int(text[0])
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not report its port")


def stop(proc):
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


SERVICES = [("product", "/api/products/health"), ("inventory", "/api/inventory/health"),
            ("order", "/api/orders/health")]


def smoke_profile(url, extra_gateway=""):
    services = "".join(
        f"  - name: {n}\n    smoke_path: {p}\n    url: null\n    expect_status: 200\n"
        f"    max_latency: 2s\n" for n, p in SERVICES)
    return (
        "environment: staging\n"
        "gateway:\n"
        f"  url: {url}\n"
        "  consumer: test-runner\n"
        "  key_file: /var/run/secrets/kong/apikey\n"
        "  key_header: apikey\n"
        "  ready: {path: /health, timeout: 5s}\n"
        f"{extra_gateway}"
        "services:\n"
        f"{services}"
        "smoke:\n"
        "  duration: 1s\n"
        "  iterations: 2\n"
        "  retries: 0\n"
        "  think_time: 0s\n"
        "  thresholds: {checks: [\"rate==1.0\"]}\n")


TOKEN = "chroot-api-token-5e1f"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def curl_in_root(rootfs, plan, args):
    """The image's own curl, in the chroot as the image's user: (rc, stdout, stderr)."""
    cmd = [shutil.which("chroot"), f"--userspec={plan.user}", rootfs, "/usr/local/bin/curl",
           "-sS", "--max-time", "20"] + args
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30,
                           env={"PATH": "/nonexistent"})
    except subprocess.TimeoutExpired as e:
        return 124, e.stdout or "", e.stderr or ""
    return r.returncode, r.stdout, r.stderr


def serve_in_root(rootfs, plan, fixture_port):
    """syncgate serve in the empty root; the seed's curl command against it, from inside."""
    pdir = os.path.join(rootfs, "etc/syncgate/test/profiles")
    os.makedirs(pdir, exist_ok=True)
    with open(os.path.join(pdir, "staging.yaml"), "w", encoding="utf-8") as f:
        f.write(smoke_profile(f"http://{HOST}:{fixture_port}"))
    token = os.path.join(rootfs, "etc/syncgate/test/token")
    with open(token, "w", encoding="utf-8") as f:
        f.write(TOKEN + "\n")
    os.chmod(token, 0o444)
    sport = free_port()
    cmd = [shutil.which("chroot"), f"--userspec={plan.user}", rootfs] + plan.entrypoint + [
        "serve", "--listen", f"127.0.0.1:{sport}", "--token-file", "/etc/syncgate/test/token",
        "--profiles-dir", "/etc/syncgate/test/profiles", "--default-profile", "staging",
        "--data-dir", "/tmp/syncgate-data"]
    srv = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           env={"PATH": "/nonexistent"})
    try:
        health = None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and srv.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{sport}/healthz", timeout=2) as r:
                    health = (r.status, json.loads(r.read()))
                break
            except (OSError, ValueError):
                time.sleep(0.1)
        check(health and health[0] == 200 and health[1].get("status") == "ok",
              "serve in the empty root: /healthz answers 200 ok", health)
        base = f"http://localhost:{sport}"
        # the seed's command as it is: refused without the token
        rc, out, err = curl_in_root(rootfs, plan, [
            "-X", "POST", f"{base}/api/tests/run", "-H", "Content-Type: application/json",
            "-d", '{"testType": "smoke"}', "-w", "\n%{http_code}"])
        check(rc == 0 and out.rstrip().endswith("401"),
              "serve: the seed's curl without the token gets 401", out + err)
        # and with it
        rc, out, err = curl_in_root(rootfs, plan, [
            "-X", "POST", f"{base}/api/tests/run", "-H", "Content-Type: application/json",
            "-H", f"Authorization: Bearer {TOKEN}", "-d", '{"testType": "smoke"}',
            "-w", "\n%{http_code}"])
        body, _, code = out.rstrip().rpartition("\n")
        run = {}
        try:
            run = json.loads(body)
        except ValueError:
            pass
        check(rc == 0 and code == "202" and isinstance(run.get("id"), int),
              "serve: the seed's curl -X POST .../api/tests/run with the token: 202 and an id",
              out + err)
        state = {}
        deadline = time.monotonic() + 30
        while run.get("id") and time.monotonic() < deadline:
            rc, out, err = curl_in_root(rootfs, plan, [
                f"{base}/api/tests/{run['id']}", "-H", f"Authorization: Bearer {TOKEN}"])
            try:
                state = json.loads(out)
            except ValueError:
                state = {}
            if state.get("state") not in (None, "running"):
                break
            time.sleep(0.2)
        check(state.get("result") == "passed" and state.get("exitCode") == 0,
              "serve: the run (a child of serve in the empty root) passed",
              {k: state.get(k) for k in ("state", "result", "exitCode", "reason")})
        rc, out, err = curl_in_root(rootfs, plan, [
            "-o", "/dev/null", "-w", "%{http_code} %{content_type}",
            f"{base}/api/tests/{run.get('id', 0)}/report.html",
            "-H", f"Authorization: Bearer {TOKEN}"])
        check(out.startswith("200 text/html"), "serve: its HTML report is served", out + err)
    finally:
        srv.send_signal(signal.SIGTERM)
        try:
            rc = srv.wait(timeout=30)
        except subprocess.TimeoutExpired:
            srv.kill()
            rc = srv.wait()
        err = srv.stderr.read().decode(errors="replace")
        check(rc == 0, f"serve: SIGTERM stops it with exit 0 (exit {rc})", err)
        check(TOKEN not in err, "serve: the API token is not in its log")


def json_events(stdout):
    evs = []
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                evs.append(json.loads(line))
            except ValueError:
                pass
    return evs


def prepare():
    why = can_chroot()
    if why:
        skip(why)
    plan = parse_dockerfile()
    if not plan:
        finish()
    return plan


# --------------------------------------------------------------------- modes

def project_version():
    with open(os.path.join(SRC, "meson.build"), encoding="utf-8") as f:
        m = re.search(r"version\s*:\s*'([^']+)'", f.read())
    return m.group(1) if m else "?"


def mode_chroot():
    plan = prepare()
    if not FIXTURE or not os.access(FIXTURE, os.X_OK):
        check(False, "fixture server available (env FIXTURE)", FIXTURE)
        finish()
    with tempfile.TemporaryDirectory(prefix="syncgate-chroot-") as tmp:
        builddir, rootfs = build_root(plan, tmp)
        inspect_root(plan, builddir, rootfs)
        add_test_files(rootfs)

        rc, out, err = in_root(rootfs, plan, ["version"])
        check(rc == 0 and project_version() in out, f"version in the empty root ({out.strip()})",
              out + err)

        for p in sorted(os.listdir(os.path.join(SRC, "profiles"))):
            if not p.endswith(".yaml"):
                continue
            rc, out, err = in_root(rootfs, plan, ["validate", "-p", f"/etc/syncgate/profiles/{p}"])
            check(rc == 0, f"validate -p /etc/syncgate/profiles/{p} in the empty root", out + err)
            check(KEY not in out + err, f"validate of {p} does not print the Kong key")

        fixture_log = os.path.join(tmp, "fixture.log")
        port_file = os.path.join(tmp, "fixture.port")
        fx = subprocess.Popen([FIXTURE, "--listen", "127.0.0.1:0", "--port-file", port_file,
                               "--log", fixture_log, "--quiet",
                               "--route", "*:GET:*=status=200,body=ok"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            port = wait_port_file(port_file, fx, "fixture")
            prof = os.path.join(rootfs, "etc/syncgate/test/http.yaml")
            with open(prof, "w", encoding="utf-8") as f:
                f.write(smoke_profile(f"http://{HOST}:{port}"))
            t0 = time.monotonic()
            rc, out, err = in_root(rootfs, plan, [
                "smoke", "-p", "/etc/syncgate/test/http.yaml", "--log-format", "json",
                "--summary-export", "/tmp/summary.json"])
            print(f"# smoke in chroot: {time.monotonic() - t0:.2f} s, exit {rc}", flush=True)
            check(rc == 0, f"smoke by host name {HOST} in the empty root exits 0", out + err)
            finish_ev = [e for e in json_events(out + "\n" + err) if e.get("event") == "test_finish"]
            check(finish_ev and finish_ev[-1].get("exit_code") == 0,
                  "test_finish event with exit_code 0", out)
            try:
                with open(os.path.join(rootfs, "tmp/summary.json"), encoding="utf-8") as f:
                    summary = json.load(f)
                checks = summary["root_group"]["checks"]
                passes = sum(c["passes"] for c in checks.values())
                fails = sum(c["fails"] for c in checks.values())
                check(passes > 0 and fails == 0,
                      f"summary: {passes} check passes, {fails} fails (written to /tmp)")
            except (OSError, ValueError, KeyError) as e:
                check(False, "summary export written to /tmp in the root", e)
            serve_in_root(rootfs, plan, port)
        finally:
            stop(fx)
        reqs = []
        with open(fixture_log, encoding="utf-8") as f:
            for line in f:
                try:
                    reqs.append(json.loads(line))
                except ValueError:
                    pass
        hdr = [{k.lower(): v for k, v in r.get("headers", [])} for r in reqs]
        paths = {r.get("path") for r in reqs}
        check(reqs and all(h.get("host") == f"{HOST}:{port}" for h in hdr),
              f"every request named host {HOST} (resolved through the root's /etc/hosts)",
              [h.get("host") for h in hdr])
        check(all(p in paths for _, p in SERVICES), "every service was smoke-checked", paths)
        smoke_hdr = [h for r, h in zip(reqs, hdr) if r.get("path") != "/health"]
        check(smoke_hdr and all(h.get("apikey") == KEY for h in smoke_hdr),
              "smoke requests carry the key from the mounted key file")
        check(smoke_hdr and all(h.get("x-consumer-username") == "test-runner" for h in smoke_hdr),
              "smoke requests carry X-Consumer-Username: test-runner")
    finish()


TLS_SERVER = r"""
import http.server, socketserver, ssl, sys
cert, key, port_file, log = sys.argv[1:5]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        with open(log, "a") as f:
            f.write(self.path + " " + (self.headers.get("Host") or "") + "\n")
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    def handle_error(self, request, client_address):
        pass
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv = S(("127.0.0.1", 0), H)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os
os.rename(port_file + ".tmp", port_file)
srv.serve_forever()
"""


def make_certs(tmp):
    """A throwaway CA and a server certificate for HOST signed by it."""
    def ssl_cmd(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)
    ca_key, ca, key, csr, crt = (os.path.join(tmp, n) for n in
                                 ("ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem"))
    ext = os.path.join(tmp, "ext.cnf")
    with open(ext, "w", encoding="utf-8") as f:
        f.write(f"subjectAltName=DNS:{HOST}\nextendedKeyUsage=serverAuth\n")
    ssl_cmd("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
            "-days", "2", "-subj", "/CN=syncgate test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=keyCertSign")
    ssl_cmd("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
            "-subj", f"/CN={HOST}")
    ssl_cmd("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
            "-out", crt, "-days", "2", "-extfile", ext)
    return ca, crt, key


def mode_https():
    plan = prepare()
    if not shutil.which("openssl"):
        check(False, "openssl command available (to make a throwaway CA)")
        finish()
    with tempfile.TemporaryDirectory(prefix="syncgate-https-") as tmp:
        _, rootfs = build_root(plan, tmp)
        add_test_files(rootfs)
        ca, crt, key = make_certs(tmp)
        shutil.copy(ca, os.path.join(rootfs, "etc/syncgate/test/ca.pem"))
        os.chmod(os.path.join(rootfs, "etc/syncgate/test/ca.pem"), 0o444)
        port_file, log = os.path.join(tmp, "tls.port"), os.path.join(tmp, "tls.log")
        srv = subprocess.Popen([sys.executable, "-c", TLS_SERVER, crt, key, port_file, log],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            port = wait_port_file(port_file, srv, "TLS server")
            url = f"https://{HOST}:{port}"

            def write(name, extra=""):
                with open(os.path.join(rootfs, "etc/syncgate/test", name), "w",
                          encoding="utf-8") as f:
                    f.write(smoke_profile(url, extra))
                return f"/etc/syncgate/test/{name}"

            def served():
                try:
                    with open(log, encoding="utf-8") as f:
                        return [line.split() for line in f]
                except FileNotFoundError:
                    return []

            # Control: the system CA bundle does not know the throwaway CA.
            rc, out, err = in_root(rootfs, plan, ["smoke", "-p", write("https-noca.yaml")])
            check(rc != 0 and not served(),
                  f"without the CA file the HTTPS smoke fails (exit {rc}, no request served)",
                  out + err)

            rc, out, err = in_root(rootfs, plan, [
                "smoke", "-p", write("https.yaml", "  ca_file: /etc/syncgate/test/ca.pem\n")])
            check(rc == 0, "HTTPS smoke with gateway.ca_file in the profile exits 0",
                  (out + err) if rc != 104 else
                  "syncgate rejected gateway.ca_file: add a CA-file option (CURLOPT_CAINFO)\n"
                  + out + err)
            n_profile = len(served())
            check(n_profile > 0 and all(h == f"{HOST}:{port}" for _, h in served()),
                  f"{n_profile} requests served over TLS to {HOST}")

            rc, out, err = in_root(rootfs, plan, ["smoke", "-p", "/etc/syncgate/test/https-noca.yaml"],
                                   env={"SSL_CERT_FILE": "/etc/syncgate/test/ca.pem"})
            check(rc == 0 and len(served()) > n_profile,
                  "HTTPS smoke with SSL_CERT_FILE in the environment exits 0 (as k6 honours it)",
                  out + err)
        finally:
            stop(srv)
    finish()


def main():
    modes = {"dockerfile": mode_dockerfile, "chroot": mode_chroot, "https": mode_https}
    if len(sys.argv) != 2 or sys.argv[1] not in modes:
        print(f"usage: {sys.argv[0]} {'|'.join(modes)}", file=sys.stderr)
        sys.exit(2)
    modes[sys.argv[1]]()


if __name__ == "__main__":
    main()
