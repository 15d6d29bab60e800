#!/usr/bin/env python3
"""The HTML report in a real browser: Debian's chromium, headless.

A `syncgate load --report` run against the fixture server (one service answers
503 for a while, so a threshold fails and the failure chart has something to
show) writes the report; chromium opens it from a file and
- dumps the rendered DOM: the verdict comes first and says FAILED, the
  thresholds table holds the failed threshold with its observed value, the four
  charts are SVG with drawn points, the checks are grouped by journey, the
  latency table has a row per service, and no element or attribute could fetch
  anything (no script, link, img, iframe, src, href, url());
- records its network log: the page made no request at all (a control page
  with one external image shows that such a request would be seen);
- takes a screenshot: a real PNG of the window size, not blank, red verdict
  banner on top, the chart colours drawn.
REPORT_SCREENSHOT_OUT (optional) gets a copy of the screenshot: scripts/report-
screenshot.sh uses it to refresh docs/report.png.
Exit status: 0 pass, 1 fail, 77 skip (chromium is not installed).
Environment (tests/integration/meson.build): SYNCGATE, FIXTURE.
"""
import html.parser
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

WIDTH, HEIGHT = 1280, 1800
CHROMIUM_TIMEOUT = 120
VERDICT_RED = (0xcf, 0x22, 0x2e)
LINE_BLUE = (0x09, 0x69, 0xda)


def chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def browse(exe, url, *extra):
    """chromium headless, isolated profile, no background services; (rc, stdout, stderr)."""
    profile_dir = h.tempdir()
    argv = [exe, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--no-default-browser-check", "--hide-scrollbars",
            "--user-data-dir=" + profile_dir, "--window-size=%d,%d" % (WIDTH, HEIGHT)]
    argv += list(extra) + [url]
    try:
        r = subprocess.run(argv, capture_output=True, timeout=CHROMIUM_TIMEOUT,
                           env=dict(os.environ, HOME=profile_dir))
    except subprocess.TimeoutExpired:
        return 124, "", "timed out"
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


class Dom(html.parser.HTMLParser):
    """Elements as (tag, attrs dict, text inside) in document order, plus texts by id."""

    def __init__(self):
        super().__init__()
        self.elements = []
        self.stack = []

    def handle_starttag(self, tag, attrs):
        el = [tag, dict(attrs), ""]
        self.elements.append(el)
        if tag not in VOID:
            self.stack.append(el)

    def handle_startendtag(self, tag, attrs):
        self.elements.append([tag, dict(attrs), ""])

    def handle_endtag(self, tag):
        if any(el[0] == tag for el in self.stack):
            while self.stack.pop()[0] != tag:
                pass

    def handle_data(self, data):
        for el in self.stack:
            el[2] += data

    def by_id(self, ident):
        for el in self.elements:
            if el[1].get("id") == ident:
                return el
        return None

    def all(self, tag, cls=None):
        return [e for e in self.elements if e[0] == tag and
                (cls is None or cls in (e[1].get("class") or "").split())]


def page_requests(netlog_path):
    """URLs the page itself asked for (its origin is file://), from chromium's net log."""
    try:
        with open(netlog_path, encoding="utf-8") as f:
            log = json.load(f)
    except (OSError, ValueError):
        return None
    urls = []
    for e in log.get("events", []):
        p = e.get("params") or {}
        if "url" in p and (p.get("initiator") == "null" or
                           "file://" in str(p.get("network_isolation_key", ""))):
            urls.append(p["url"])
    return urls


def png_pixels(path):
    """(width, height, rows of RGB tuples) of an 8-bit RGB/RGBA PNG; raises on anything else."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG signature")
    pos, idat, width = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + n]
        if zlib.crc32(kind + chunk) != struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]:
            raise ValueError("bad CRC in %r" % kind)
        if kind == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            if depth != 8 or ctype not in (2, 6) or interlace:
                raise ValueError("PNG depth %d colour type %d interlace %d" % (depth, ctype,
                                                                              interlace))
            bpp = 4 if ctype == 6 else 3
        elif kind == b"IDAT":
            idat += chunk
        elif kind == b"IEND":
            break
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = width * bpp
    if len(raw) != height * (stride + 1):
        raise ValueError("image data is %d bytes, expected %d" % (len(raw), height * (stride + 1)))
    rows, prev = [], bytearray(stride)
    for y in range(height):
        ft = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if ft == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xff
        elif ft == 2:
            line = bytearray((a + b) & 0xff for a, b in zip(line, prev))
        elif ft == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xff
        elif ft == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xff
        elif ft != 0:
            raise ValueError("filter type %d" % ft)
        rows.append([tuple(line[i:i + 3]) for i in range(0, stride, bpp)])
        prev = line
    return width, height, rows


def near(c, want, tol=24):
    return all(abs(a - b) <= tol for a, b in zip(c, want))


def make_report(t):
    d = h.tempdir()
    report = os.path.join(d, "report.html")
    routes = ["0:GET:/health=body=ok",
              "0:GET:/direct/order=status=503,times=40",
              "0:GET:/direct/*=delay=3ms,body=ok"]
    with h.Fixture(routes) as fx:
        prof = h.write_profile({
            "environment": "staging",
            "gateway": {"url": fx.url(), "ready": {"path": "/health", "timeout": "5s"}},
            "services": [{"name": n, "smoke_path": "/health", "url": fx.url(0, "/direct/" + n)}
                         for n in ("product", "order", "inventory")],
            "load": {"stages": [{"duration": "3s", "target": 6}, {"duration": "3s", "target": 6},
                                {"duration": "2s", "target": 0}],
                     "think_time": "50ms", "graceful_ramp_down": "1s"},
        })
        res = h.run_syncgate(["load", "-p", prof, "--report", report, "-q"], timeout=60)
    t.eq(res.rc, 99, "report: the load run fails a threshold (exit 99)") or t.diag(res.explain())
    t.ok(os.path.getsize(report) > 2000 if os.path.exists(report) else False,
         "report: --report wrote the file")
    return report


def main():
    t = h.Tap()
    exe = chromium()
    if not exe:
        print("# SKIP chromium is not installed (Debian: apt-get install chromium)", flush=True)
        sys.exit(77)
    report = make_report(t)
    url = "file://" + report
    work = h.tempdir()

    # the rendered DOM
    netlog = os.path.join(work, "net.json")
    rc, dom_text, err = browse(exe, url, "--dump-dom", "--log-net-log=" + netlog)
    t.ok(rc == 0 and "<html" in dom_text, "chromium renders the report (--dump-dom)", err[-2000:])
    dom = Dom()
    dom.feed(dom_text)
    verdict = dom.by_id("verdict")
    body = [e for e in dom.elements if e[0] not in ("html", "head", "meta", "title", "style",
                                                    "body")]
    t.ok(verdict is not None and body and body[0] is verdict,
         "DOM: the verdict is the first thing in the body")
    t.ok(verdict and "failed" in verdict[1].get("class", "") and "FAILED" in verdict[2] and
         "exit code 99" in verdict[2] and "1 of 3 thresholds failed" in verdict[2],
         "DOM: the verdict says FAILED, 1 of 3 thresholds, exit code 99",
         verdict[2] if verdict else None)
    rows = dom.all("tr", "threshold")
    failed = [r for r in rows if "failed" in r[1].get("class", "")]
    t.ok(len(rows) == 3 and len(failed) == 1 and "http_req_failed" in failed[0][2] and
         "rate<0.01" in failed[0][2] and re.search(r"\d+(\.\d+)?%", failed[0][2]),
         "DOM: thresholds with observed values; http_req_failed rate<0.01 failed",
         [r[2] for r in rows])
    t.ok(all(r[2].strip() for r in dom.all("td", "baseline")) and
         len(dom.all("td", "baseline")) == 3, "DOM: a baseline cell per threshold")
    svgs = dom.all("svg")
    t.eq(len(svgs), 4, "DOM: four charts (svg)")
    for ident in ("chart-rps", "chart-vus", "chart-p95", "chart-errors"):
        fig = dom.by_id(ident)
        i = dom.elements.index(fig) if fig else -1
        svg = next((e for e in dom.elements[i:] if e[0] == "svg"), None) if fig else None
        points = int(svg[1].get("data-points", 0)) if svg else 0
        lines = []
        for e in dom.elements[i + 1:]:
            if e[0] == "figure":
                break
            if e[0] == "polyline":
                lines.append(e[1].get("points", "").split())
        drawn = sum(len(p) for p in lines)
        t.ok(points >= 5 and drawn >= 5 and all(re.fullmatch(r"[\d.]+,[\d.]+", xy)
                                                 for p in lines for xy in p),
             "DOM: %s draws its points (%d points, %d drawn)" % (ident, points, drawn))
    journeys = dom.all("div", "journey")
    t.ok(len(journeys) == 3 and any("order" in j[2] and "✗" in j[2] for j in journeys),
         "DOM: checks grouped by journey (3 services), order's marked ✗",
         [j[2][:60] for j in journeys])
    services = dom.all("tr", "service")
    t.ok(len(services) == 3 and all("ms" in s[2] for s in services),
         "DOM: a latency row per service, in ms", [s[2] for s in services])
    fetching = [e[0] for e in dom.elements if e[0] in ("script", "link", "img", "iframe",
                                                       "object", "embed", "source", "video",
                                                       "audio", "base")]
    attrs = [(e[0], k) for e in dom.elements for k in e[1] if k in ("src", "href", "srcset",
                                                                     "action", "data")]
    t.ok(not fetching and not attrs and "url(" not in dom_text,
         "DOM: nothing that could fetch: no script/link/img/iframe, no src/href, no url()",
         fetching, attrs)
    reqs = page_requests(netlog)
    t.ok(reqs == [], "network: the report made no request at all (chromium's net log)", reqs)
    control = os.path.join(work, "control.html")
    with open(control, "w") as f:
        f.write('<html><body><img src="http://127.0.0.1:9/external.png"></body></html>')
    netlog2 = os.path.join(work, "net-control.json")
    browse(exe, "file://" + control, "--dump-dom", "--log-net-log=" + netlog2)
    seen = page_requests(netlog2) or []
    t.ok(any("127.0.0.1:9/external.png" in u for u in seen),
         "network: control: a page with an external image is seen requesting it", seen)

    # the screenshot
    shot = os.path.join(work, "report.png")
    t0 = time.monotonic()
    rc, _, err = browse(exe, url, "--screenshot=" + shot)
    t.ok(rc == 0 and os.path.exists(shot), "chromium takes a screenshot (%.1f s)"
         % (time.monotonic() - t0), err[-2000:])
    try:
        w, hgt, px = png_pixels(shot)
    except (OSError, ValueError, zlib.error) as e:
        t.ok(False, "screenshot: a valid PNG", repr(e))
        t.done()
    t.ok((w, hgt) == (WIDTH, HEIGHT), "screenshot: a valid PNG of %dx%d" % (w, hgt))
    colours = {}
    for y in range(0, hgt, 4):
        for x in range(0, w, 4):
            c = px[y][x]
            colours[c] = colours.get(c, 0) + 1
    total = sum(colours.values())
    top = max(colours.values())
    t.ok(len(colours) > 50 and top < 0.9 * total,
         "screenshot: not blank (%d colours, the commonest on %.0f%% of samples)"
         % (len(colours), 100.0 * top / total))
    banner = [px[y][x] for y in (10, 30, 50) for x in (5, 640, 1270)]
    t.ok(all(near(c, VERDICT_RED) for c in banner),
         "screenshot: the top of the page is the red FAILED banner", banner)
    blue = sum(1 for row in px[::2] for c in row[::2] if near(c, LINE_BLUE, 40))
    t.ok(blue > 50, "screenshot: the requests chart's line is drawn (%d blue samples)" % blue)
    out = os.environ.get("REPORT_SCREENSHOT_OUT")
    if out:
        shutil.copyfile(shot, out)
        t.diag("screenshot copied to %s" % out)
    t.done()


if __name__ == "__main__":
    main()
