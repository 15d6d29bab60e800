"""A throwaway real Prometheus for tests (stdlib only).

    with Prometheus(native=True) as prom:
        url = prom.write_url            # give this to syncgate / rwdriver
        prom.query('sum(k6_http_reqs_total{testid="x"})')   # -> list of result dicts
        prom.wait_for('k6_vus{testid="x"}')                  # poll until non-empty

Installs Debian's prometheus with apt-get when /usr/bin/prometheus is missing
and we are root; otherwise raises rwlib.Skip. Listens on 127.0.0.1 on a free
port, keeps its data in a temporary directory that is removed on stop.
"""
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from rwlib import Skip, free_port

PROMETHEUS = "/usr/bin/prometheus"


def ensure_prometheus():
    if os.path.exists(PROMETHEUS):
        return PROMETHEUS
    if os.geteuid() != 0:
        raise Skip("prometheus is not installed and we are not root to apt-get it")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "prometheus"],
                   env=env, check=False, stdout=subprocess.DEVNULL, timeout=600)
    if not os.path.exists(PROMETHEUS):
        subprocess.run(["apt-get", "update"], env=env, check=False, stdout=subprocess.DEVNULL,
                       timeout=600)
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "prometheus"],
                       env=env, check=False, stdout=subprocess.DEVNULL, timeout=600)
    if not os.path.exists(PROMETHEUS):
        raise Skip("could not install prometheus")
    return PROMETHEUS


class Prometheus:
    def __init__(self, native=False):
        self.native = native
        self.proc = None
        self.dir = None
        self.port = None

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def write_url(self):
        return self.base + "/api/v1/write"

    def start(self, timeout=60):
        binary = ensure_prometheus()
        self.dir = tempfile.mkdtemp(prefix="syncgate-prom-")
        cfg = os.path.join(self.dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1h\n  evaluation_interval: 1h\n")
        self.port = free_port()
        cmd = [binary, "--config.file=" + cfg, "--storage.tsdb.path=" + self.dir + "/data",
               "--web.listen-address=127.0.0.1:%d" % self.port,
               "--web.enable-remote-write-receiver", "--log.level=warn"]
        if self.native:
            cmd.append("--enable-feature=native-histograms")
        self.log = open(os.path.join(self.dir, "prometheus.log"), "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("prometheus exited: %s" % self.logs())
            try:
                with urllib.request.urlopen(self.base + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError("prometheus not ready in %ds: %s" % (timeout, self.logs()))

    def logs(self):
        try:
            with open(os.path.join(self.dir, "prometheus.log")) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def api(self, path, **params):
        url = self.base + path + "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
        if body.get("status") != "success":
            raise AssertionError("%s: %s" % (url, body))
        return body["data"]

    def query(self, promql, at=None):
        """Instant query; returns data.result (list of {metric, value|histogram})."""
        params = {"query": promql}
        if at is not None:
            params["time"] = "%.3f" % at
        return self.api("/api/v1/query", **params)["result"]

    def series(self, match):
        return self.api("/api/v1/series", **{"match[]": match})

    def wait_for(self, promql, timeout=15, at=None):
        deadline = time.monotonic() + timeout
        while True:
            res = self.query(promql, at=at)
            if res or time.monotonic() > deadline:
                return res
            time.sleep(0.3)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
