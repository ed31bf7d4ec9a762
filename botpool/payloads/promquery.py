"""Ask this host's Prometheus a fixed list of queries; print one JSON line (the dashboard).

Runs inside the monitoring container (`docker exec ... python3 -I -c SOURCE URL QUERIES`),
where Prometheus listens on 127.0.0.1: so the dashboard asks every query of a refresh in ONE
remote command, whatever the number of bots, and no port leaves the host. QUERIES is a JSON
list of {"id", "expr"} (an instant query) or {"id", "expr", "start", "end", "step"} (a range
query). The output maps each id to Prometheus' own answer (`{"status", "data"}`) or to
{"status": "error", "error": "..."} for that query alone. Standard library only.

Every answer is bounded (ANSWER_MAX_BYTES) and every call has a timeout; the whole run is
bounded by the remote command's own time limit.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

ANSWER_MAX_BYTES = 8 * 1024 * 1024  # one query's answer (a week of 500 series fits)
CALL_TIMEOUT_S = 10


def ask(base: str, query: dict[str, Any]) -> dict[str, Any]:
    """Prometheus' answer to one query, or an error of its own."""
    params = {"query": str(query["expr"])}
    if "step" in query:
        path = "query_range"
        params.update({key: str(query[key]) for key in ("start", "end", "step")})
    else:
        path = "query"
    url = f"{base}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=CALL_TIMEOUT_S) as answer:
            body = answer.read(ANSWER_MAX_BYTES + 1)
    except urllib.error.HTTPError as error:  # a bad query: Prometheus says why, in JSON
        body = error.read(ANSWER_MAX_BYTES + 1)
    except (OSError, ValueError) as error:
        return {"status": "error", "error": f"Prometheus did not answer: {error}"}
    if len(body) > ANSWER_MAX_BYTES:
        return {"status": "error", "error": f"answer larger than {ANSWER_MAX_BYTES} bytes"}
    try:
        parsed = json.loads(body)
    except ValueError:
        return {"status": "error", "error": "answer is not JSON"}
    return parsed if isinstance(parsed, dict) else {"status": "error", "error": "not an object"}


def main(argv: list[str]) -> int:
    base, queries = argv[0].rstrip("/"), json.loads(argv[1])
    print(json.dumps({str(q["id"]): ask(base, q) for q in queries}, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
