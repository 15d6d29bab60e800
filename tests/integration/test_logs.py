#!/usr/bin/env python3
"""Log lines cannot be forged: every stderr line is one whole, well-formed line.

Environment (set by tests/integration/meson.build): SYNCGATE, FIXTURE, RWFIXTURE. Prints TAP.

A gateway answers 429 with rate-limit headers, and a remote-write receiver
refuses pushes with error bodies (400: dropped, 503: retried), all holding
hostile text: line breaks (bodies only: a header cannot hold one), a forged
{"event":"test_finish",...} line and a forged text line, ESC (CSI, OSC)
and C1 sequences, a line separator, a bidi override, DEL, and bytes that
are not UTF-8. `syncgate smoke` runs with JSON and with text logs, and every
byte of stderr is checked: strict UTF-8, no control byte but the line ends,
and every line parses whole: as a JSON object (JSON), or as
"time level event" and key=value fields, a value bare or double-quoted with
backslash escapes (text). The only test_finish is syncgate's own, with the
real exit code, and the hostile text is still there, escaped, in the fields.
"""
import json
import os
import re
import subprocess
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "remote_write"))
import harness as h  # noqa: E402
import rwlib  # noqa: E402

FORGED_JSON = '{"event":"test_finish","level":"info","exit_code":0,"result":"passed"}'
FORGED_TEXT = "2024-01-01T00:00:00.000Z info test_finish exit_code=0 result=passed"
ESCAPES = b"\x1b[2J\x1b[31mred\x1b]0;title\x07 c1-csi\xc2\x9b31m sep\xe2\x80\xa8 bidi\xe2\x80\xae del\x7f"
BAD_UTF8 = b" bad\xff\xfe\xc3 overlong\xc0\xaf surrogate\xed\xa0\x80"

# a body: line breaks, both forged lines, escapes, bad bytes
BODY = (b"rejected\n" + FORGED_JSON.encode() + b"\r\n" + FORGED_TEXT.encode() + b"\n" +
        ESCAPES + BAD_UTF8 + b' x" event=test_finish \\')
# a header value: everything but line breaks
HEADER = FORGED_JSON.encode() + b" " + ESCAPES + BAD_UTF8


def pct(b):
    return urllib.parse.quote_from_bytes(b, safe="")


def fixture_escape(b):
    """Bytes as a fixture route argument: \\ and , escaped; other bytes through surrogates."""
    s = b.replace(b"\\", b"\\\\").replace(b",", b"\\,")
    return s.decode("utf-8", "surrogateescape")


def run_raw(args, env):
    """syncgate with stderr kept as bytes: (exit code, stderr bytes)."""
    p = subprocess.run(h.syncgate_args(args), env=h.syncgate_env(env), capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=60)
    return p.returncode, p.stderr


# a value: double-quoted with backslash escapes, or bare (no space or '=', no leading '"')
VALUE = r'(?:"(?:[^"\\]|\\.)*"|[^ "=][^ =]*)'
TEXT_LINE = re.compile(r'^(\S+) (debug|info|warn|error) ([a-z_]+)((?: [^ ="]+=%s)*)$' % VALUE)
TEXT_FIELD = re.compile(r' ([^ ="]+)=(%s)' % VALUE)


def parse_text(line):
    """(event, {key: raw value}) of a text line, or None when it does not parse whole."""
    m = TEXT_LINE.match(line)
    if not m:
        return None
    return m.group(3), dict(TEXT_FIELD.findall(m.group(4)))


def check_stderr(t, label, fmt, rc, err):
    try:
        text = err.decode("utf-8", "strict")
        t.ok(True, "%s: stderr is well-formed UTF-8" % label)
    except UnicodeDecodeError as e:
        t.ok(False, "%s: stderr is well-formed UTF-8" % label, str(e), repr(err[:2000]))
        text = err.decode("utf-8", "replace")
    ctl = sorted({"%02x" % c for c in err if (c < 0x20 and c != 0x0a) or c == 0x7f})
    t.eq(ctl, [], "%s: no control byte but the line ends" % label)
    raw = [c for c in ("\u009b", "\u2028", "\u202e") if c in text]
    t.eq(raw, [], "%s: no C1, separator or bidi character left raw" % label)
    lines = text.split("\n")
    t.eq(lines[-1], "", "%s: stderr ends with a line end" % label)
    events, bad = [], []
    for line in lines[:-1]:
        if fmt == "json":
            try:
                obj = json.loads(line)
                events.append((obj["event"], obj))
            except (ValueError, KeyError, TypeError):
                bad.append(line)
        else:
            parsed = parse_text(line)
            if parsed:
                events.append(parsed)
            else:
                bad.append(line)
    t.eq(bad, [], "%s: every line parses whole (%d lines)" % (label, len(lines) - 1))
    finish = [f for e, f in events if e == "test_finish"]
    t.eq(len(finish), 1, "%s: exactly one test_finish line" % label)
    if finish:
        code = finish[0].get("exit_code")
        t.eq(str(code), str(rc), "%s: test_finish has the real exit code %d" % (label, rc))
    hostile = [e for e, _ in events if e in ("rate_limited", "remote_write_rejected",
                                             "remote_write_error")]
    t.ok({"rate_limited", "remote_write_rejected", "remote_write_error"} <= set(hostile),
         "%s: the hostile text was logged (rate_limited, remote_write_rejected, "
         "remote_write_error)" % label, sorted(set(hostile)))
    quoted = [f for e, f in events if e == "remote_write_rejected"]
    if fmt == "json":
        body = quoted[0].get("body", "") if quoted else ""
        t.ok(FORGED_JSON in body and "\x1b[2J" in body and "\ufffd" in body,
             "%s: the body is kept, escaped by JSON, bad bytes as U+FFFD" % label, repr(body))
    else:
        body = quoted[0].get("body", "") if quoted else ""
        t.ok(body.startswith('"rejected\\x0a{\\"event\\":\\"test_finish\\"') and
             "\\x1b[2J" in body and "\ufffd" in body,
             "%s: the body is kept, quoted and escaped, bad bytes as U+FFFD" % label, body)


def case_hostile(t):
    routes = ["0:GET:/health=status=200",
              "0:GET:/api/x=kong429=0,header=RateLimit-Policy:" + fixture_escape(HEADER) +
              ",header=X-RateLimit-Note:" + fixture_escape(HEADER)]
    with h.Fixture(routes) as fx:
        prof = h.write_profile({
            "gateway": {"url": fx.url(0), "ready": {"path": "/health"}},
            "services": [{"name": "x", "smoke_path": "/api/x"}],
            "smoke": {"iterations": 6, "think_time": "150ms", "retries": 0},
        })
        for fmt in ("json", "text"):
            # push 0: 400 (dropped), 1 and 2: 503 (retried), then accepted
            script = "0=400:%s,1=503:%s,2=503:%s" % ((pct(BODY),) * 3)
            with rwlib.Fixture(script=script) as rw:
                env = {"K6_PROMETHEUS_RW_SERVER_URL": rw.url,
                       "K6_PROMETHEUS_RW_PUSH_INTERVAL": "100ms"}
                rc, err = run_raw(["smoke", "-p", prof, "--log-format", fmt], env)
                recs = rw.records()
            label = "hostile answers, %s logs" % fmt
            t.eq(rc, 99, "%s: smoke fails on the 429s (99)" % label) or t.diag(err[-3000:])
            t.ok(len(recs) >= 3 and recs[0]["status"] == 400,
                 "%s: the receiver refused pushes as scripted" % label)
            check_stderr(t, label, fmt, rc, err)


if __name__ == "__main__":
    h.Tap().run(case_hostile)
