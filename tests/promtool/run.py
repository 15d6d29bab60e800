#!/usr/bin/env python3
"""`promtool test rules` on the PrometheusRule of manifests/ (exit status: 0 pass, 1 fail).

promtool reads plain rule files, so the PrometheusRule's spec (its `groups`) is written
to a temporary rule file first, and the test file's RULES placeholder is pointed at it.
Usage: run.py RULE_MANIFEST TEST_FILE...
"""
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:
    print("python3-yaml is missing: run scripts/deps.sh test", flush=True)
    sys.exit(1)

PROMTOOL = shutil.which("promtool")


def main():
    manifest, tests = sys.argv[1], sys.argv[2:]
    if not PROMTOOL:
        print("promtool is missing (Debian package prometheus): run scripts/deps.sh test",
              flush=True)
        sys.exit(1)
    with open(manifest) as f:
        rule = yaml.safe_load(f)
    assert rule["kind"] == "PrometheusRule", rule.get("kind")
    with tempfile.TemporaryDirectory(prefix="syncgate-promtool-") as d:
        rules = os.path.join(d, "rules.yaml")
        with open(rules, "w") as f:
            yaml.safe_dump(rule["spec"], f, sort_keys=False)
        paths = []
        for i, test in enumerate(tests):
            with open(test) as f:
                text = f.read()
            if "  - RULES\n" not in text:
                print("%s: no RULES placeholder under rule_files" % test)
                sys.exit(1)
            paths.append(os.path.join(d, "test-%d-%s" % (i, os.path.basename(test))))
            with open(paths[-1], "w") as f:
                f.write(text.replace("  - RULES\n", "  - %s\n" % rules))
        check = subprocess.run([PROMTOOL, "check", "rules", rules])
        res = subprocess.run([PROMTOOL, "test", "rules"] + paths)
        sys.exit(0 if check.returncode == 0 and res.returncode == 0 else 1)


if __name__ == "__main__":
    main()
