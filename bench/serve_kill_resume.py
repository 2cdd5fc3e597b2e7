"""A served victim SIGKILLed mid-extraction, and the run started again.

    python bench/serve_kill_resume.py [--scenario scenarios/extraction_http.yaml] [--after-requests 80]

Runs the scenario (``api.transport: http``) with a fresh cache, kills its first ``redteam serve``
child with SIGKILL once that server's ledger holds ``--after-requests`` answered requests, and prints the first run's exit code and error line and
the server's books; then runs the same command again and prints, per attack, the queries bought
live and replayed, the books again (each query charged and logged once) and Agreement@10.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import base_parser

REPO = Path(__file__).resolve().parents[1]


def first_server(run: subprocess.Popen, timeout: float = 300) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = subprocess.run(["pgrep", "-P", str(run.pid), "-f", "redteam.cli serve"], capture_output=True, text=True)
        if found.stdout.strip():
            return int(found.stdout.split()[0])
        if run.poll() is not None:
            raise SystemExit(f"the run ended before it served a victim (exit {run.returncode})")
        time.sleep(0.1)
    raise SystemExit("no server started")


def requests_answered(cache: Path) -> int:
    import sqlite3

    ledgers = sorted(cache.glob("transcripts/*/*/ledger.sqlite"))
    if not ledgers:
        return 0
    db = sqlite3.connect(f"file:{ledgers[0]}?mode=ro", uri=True)
    try:
        return db.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
    except sqlite3.Error:
        return 0
    finally:
        db.close()


def books(cache: Path) -> dict:
    from redteam.serving.ledger import Ledger

    return {p.parent.name: Ledger(p).counts() for p in sorted(cache.glob("transcripts/*/*/ledger.sqlite"))}


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=str(REPO / "scenarios/extraction_http.yaml"))
    parser.add_argument("--after-requests", type=int, default=80, help="answered requests before the kill")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="redteam-kill-") as tmp:
        cache, out = Path(tmp) / "cache", Path(tmp) / "runs"
        env = {**os.environ, "REDTEAM_CACHE_DIR": str(cache)}
        cmd = [sys.executable, "-m", "redteam.cli", "run", args.scenario, "--json", "--out", str(out),
               "--threads", str(args.threads)]
        run = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        server = first_server(run)
        while requests_answered(cache) < args.after_requests and run.poll() is None:
            time.sleep(0.01)
        os.kill(server, signal.SIGKILL)
        _, err = run.communicate()
        print(f"first run: exit {run.returncode}; {err.strip().splitlines()[-1] if err.strip() else ''}")
        print(f"books after the kill: {json.dumps(books(cache))}")
        again = subprocess.run(cmd, env=env, capture_output=True, text=True)
        print(f"second run: exit {again.returncode}")
        if again.returncode != 0:
            raise SystemExit(again.stderr.strip())
        for row in json.loads(again.stdout)["rows"]:
            if row["attack"] != "none":
                e = row["info"]["extraction"][0]
                print(f"  {row['attack']}: live {e['queries_sent_live']}, replayed {e['queries_replayed']} "
                      f"({e['queries_from_journal']} from the journal), "
                      f"requests {e['http_requests']}, agreement@10 {row['metrics']['agreement@10']['value']:.4f}")
        print(f"books after the second run: {json.dumps(books(cache))}")


if __name__ == "__main__":
    main()
