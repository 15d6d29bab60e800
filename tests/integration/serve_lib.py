"""serve_lib: `syncgate serve` for the integration tests (Python 3 standard library only).

- Server: the real binary (behind SYNCGATE_WRAPPER, e.g. valgrind) serving on an
  ephemeral port of 127.0.0.1 with a token file, a profiles directory and a data
  directory; it waits for the serve_start log event to learn the port, and is
  always stopped (harness's process list, PR_SET_PDEATHSIG).
- Server.request(): one HTTP request (http.client), the answer as (status,
  headers dict with lower-case names, body bytes); .json() the same, body decoded.
- kubestock(): the fixture server standing in for KubeStock: the gateway's health
  and the services' smoke paths on listener 0, their direct URLs too.
- write_profiles(): the profiles the tests name.
"""

import http.client
import json
import os
import signal
import subprocess
import time

import harness as h

TOKEN = "it-token-7d3c0ffee"
SERVICES = [("product", "/api/products/health"), ("order", "/api/orders/health")]


def kubestock(extra=()):
    routes = list(extra)
    routes.append("0:GET:/health=delay=1ms,body=ok")
    for _, p in SERVICES:
        routes.append("0:GET:%s=delay=2ms,body={\"status\":\"ok\"}" % p)
    routes.append("0:GET:/fail/*=status=503")
    routes.append("0:GET:/direct/*=delay=5ms,body=ok")
    return h.Fixture(routes)


def profile(fx, environment="staging", smoke_prefix="", load_s="20s", vus=2, think="100ms"):
    return {
        "environment": environment,
        "gateway": {"url": fx.url(), "ready": {"path": "/health", "timeout": "5s"}},
        "services": [
            {"name": n, "smoke_path": smoke_prefix + p, "url": fx.url(0, "/direct/" + n),
             "expect_status": 200, "max_latency": "2s"}
            for n, p in SERVICES
        ],
        "smoke": {"duration": "1s", "iterations": 1, "think_time": "0s", "retries": 0},
        "load": {"stages": [{"duration": load_s, "target": vus}], "think_time": think,
                 "graceful_ramp_down": "1s"},
    }


def write_profiles(fx, directory=None):
    """staging, production, failing (smoke gets 503s) and broken (not YAML) in one directory."""
    d = directory or h.tempdir()
    h.write_profile(profile(fx), "staging.yaml", d)
    h.write_profile(profile(fx, environment="production"), "production.yaml", d)
    h.write_profile(profile(fx, smoke_prefix="/fail"), "failing.yaml", d)
    h.write_file("environment: [unclosed\n", "broken.yaml", d)
    return d


class Server:
    def __init__(self, profiles, data=None, args=(), token=TOKEN, env=None, wait=True):
        self.dir = h.tempdir()
        self.data = data or os.path.join(self.dir, "data")
        self.token_file = h.write_file(token + "\n", "token", self.dir)
        self.err_path = os.path.join(self.dir, "stderr")
        self.argv = h.syncgate_args(["serve", "--listen", "127.0.0.1:0", "--token-file",
                                     self.token_file, "--profiles-dir", profiles,
                                     "--data-dir", self.data, "--default-profile", "staging",
                                     "--log-format", "json"] + list(args))
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(self.argv, env=h.syncgate_env(env),
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=err, preexec_fn=h._die_with_parent)
        h._live_procs.append(self.proc)
        self.port = None
        if wait:
            self.wait_started()

    def wait_started(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e in self.events("serve_start"):
                self.port = e["port"]
                return self
            if self.proc.poll() is not None:
                raise RuntimeError("serve exited %s:\n%s" % (self.proc.returncode, self.stderr()))
            time.sleep(0.02)
        raise RuntimeError("serve did not start:\n" + self.stderr())

    def stderr(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def events(self, name=None):
        return [e for e in h.parse_logs(self.stderr()) if name is None or e.get("event") == name]

    def request(self, method, path, body=None, token=TOKEN, headers=None, timeout=30.0):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        hdr = dict(headers or {})
        if token is not None:
            hdr.setdefault("Authorization", "Bearer " + token)
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            hdr.setdefault("Content-Type", "application/json")
        try:
            # an iterable body goes out chunked, without Content-Length
            chunked = body is not None and not isinstance(body, (str, bytes))
            c.request(method, path, body=body, headers=hdr, encode_chunked=chunked)
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def json(self, method, path, body=None, **kw):
        st, hdr, data = self.request(method, path, body, **kw)
        try:
            return st, hdr, json.loads(data) if data else None
        except ValueError:
            return st, hdr, {"_raw": data.decode("utf-8", "replace")}

    def run(self, body):
        """POST /api/tests/run; returns (status, body)."""
        st, _, b = self.json("POST", "/api/tests/run", body)
        return st, b

    def get(self, run_id):
        return self.json("GET", "/api/tests/%d" % run_id)[2]

    def wait_state(self, run_id, pred, timeout=60.0):
        deadline = time.monotonic() + timeout
        while True:
            r = self.get(run_id)
            if pred(r) or time.monotonic() > deadline:
                return r
            time.sleep(0.05)

    def wait_done(self, run_id, timeout=60.0):
        return self.wait_state(run_id, lambda r: r and r.get("state") != "running", timeout)

    def kill(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=60.0):
        """Signal and wait; returns the exit code (None if it had to be killed)."""
        self.kill(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None
        finally:
            if self.proc in h._live_procs:
                h._live_procs.remove(self.proc)


def children_of_data(data):
    """pids of processes whose command line names the data directory (a server's runs)."""
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                cmd = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        if data in cmd and "--summary-export" in cmd:
            pids.append(int(p))
    return pids
