"""Where a web process's memory goes: RSS after each import, create_app and first pages (issue 17).

    python bench/memory.py

Each step runs in a fresh interpreter, so a figure is what that step adds on its own, then
cumulatively in the order a web process pays it:
1. each top-level dependency imported alone (RSS above a bare interpreter);
2. a web process's life in one interpreter: the dependencies in turn, `create_app()`, then
   the first request of each page (hosted form, its POST, the answer, the status page,
   /healthz, the dashboard login), printing the RSS after each step and which modules the
   web process loaded that only the worker or the CLI need (e.g. the SMS SDK).
Target 5: ≤ 80 MB RSS per web process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _support import ROOT, STANDARD, seed, service_env

TARGET_MIB = 80 * 1000 * 1000 / 2**20  # the target says MB
DEPENDENCIES = [
    "flask", "sqlalchemy", "jinja2", "wtforms", "flask_babel", "babel", "pydantic", "httpx",
    "vonage", "PIL.Image", "huey", "waitress", "email_validator", "flask_mail",
]  # fmt: skip

RSS = """
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
"""

ALONE = (
    RSS
    + """
import importlib, json, sys
base = rss()
try:
    importlib.import_module(sys.argv[1])
    print(json.dumps({"mib": rss() - base, "base": base}))
except Exception as exc:
    print(json.dumps({"error": repr(exc)}))
"""
)

LIFE = (
    RSS
    + """
import importlib, json, re, sys
deps, site_key, standard = json.loads(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
steps = [("python", rss())]
for name in deps:
    try:
        importlib.import_module(name)
    except Exception:
        continue
    steps.append(("import " + name, rss()))
from supportwidget import create_app
steps.append(("import supportwidget", rss()))
app = create_app()
steps.append(("create_app()", rss()))
client = app.test_client()
path = "/s/" + site_key
page = client.get(path).data
steps.append(("GET hosted form", rss()))
token = re.search(rb'name="form_token" type="hidden" value="([^"]+)"', page).group(1).decode()
answer = client.post(path, data={**standard, "form_token": token}).data
assert b"SUP-" in answer, answer[:300]
steps.append(("POST hosted form (answer page)", rss()))
status = re.search(rb'href="(/t/[^"]+)"', answer)
if status:
    client.get(status.group(1).decode())
    steps.append(("GET status page", rss()))
client.get("/healthz")
steps.append(("GET /healthz", rss()))
client.get("/login")
steps.append(("GET /login", rss()))
for _ in range(50):
    token = re.search(rb'name="form_token" type="hidden" value="([^"]+)"',
                      client.get(path).data).group(1).decode()
    client.post(path, data={**standard, "form_token": token})
steps.append(("50 more GET + POST", rss()))
worker_only = sorted(
    m for m in sys.modules
    if m.split(".")[0] in ("vonage", "vonage_sms", "vonage_http_client", "huey", "aiosmtpd")
    or m.startswith(("supportwidget.worker", "supportwidget.notify.channels.vonage"))
)
print(json.dumps({"steps": steps, "modules": len(sys.modules), "worker_only": worker_only}))
"""
)


def run(code: str, *args: str, env: dict[str, str] | None = None) -> dict:
    """Run code in a fresh interpreter; return the JSON it printed last."""
    out = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if out.returncode:
        sys.exit(f"step failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Print the RSS each dependency costs alone, then a web process's life step by step."""
    print("each dependency imported alone in a fresh interpreter (RSS added):")
    for name in DEPENDENCIES:
        found = run(ALONE, name)
        text = found.get("error") or f"{found['mib']:6.1f} MiB (bare python {found['base']:.1f})"
        print(f"  {name:<16} {text}")
    with tempfile.TemporaryDirectory(prefix="sw-bench-memory-") as tmp:
        env = service_env(Path(tmp) / "instance", MAIL_SUPPRESS_SEND="true", QUEUE_URL="memory://")
        site_key = seed(env, staff=2)
        life = run(LIFE, json.dumps(DEPENDENCIES), site_key, json.dumps(STANDARD), env=env)
    print("\none web process, cumulative RSS (step: total, added):")
    previous = 0.0
    for label, mib in life["steps"]:
        print(f"  {label:<34} {mib:6.1f} MiB  {mib - previous:+6.1f}")
        previous = mib
    total = life["steps"][-1][1]
    verdict = "meets" if total <= TARGET_MIB else "ABOVE"
    print(
        f"{life['modules']} modules loaded; RSS {total:.1f} MiB: {verdict} the target "
        f"of 80 MB ({TARGET_MIB:.1f} MiB)"
    )
    print(
        "loaded by the web process though only the worker/CLI sends with them:",
        ", ".join(life["worker_only"]) or "none",
    )


if __name__ == "__main__":
    main()
