"""HTTP(S) client run INSIDE a test namespace (``ip netns exec NS python client.py MODE JSON``).

Modes:

* ``get``: one request per job ``{label, source, url, host, sni, method, body, ca}``; prints
  ``{label: {"status": int | None, "error": str | None, "body": str}}``.
* ``load``: requests to one URL back to back (each on a new connection, 2 s timeout) until
  the file ``stop`` exists; prints ``[[start, end, status or None], ...]`` (monotonic seconds).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import sys
import time
import urllib.parse


def request(job: dict, timeout: float = 3.0) -> tuple[int | None, str | None, str]:
    url = urllib.parse.urlsplit(job["url"])
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        raw = socket.create_connection((url.hostname, port), timeout=timeout,
                                       source_address=(job["source"], 0) if job.get("source") else None)
        if url.scheme == "https":
            context = ssl.create_default_context(cafile=job["ca"])
            raw = context.wrap_socket(raw, server_hostname=job.get("sni") or url.hostname)
        conn = http.client.HTTPConnection(url.hostname, port, timeout=timeout)
        conn.sock = raw
        body = job.get("body")
        headers = {"Host": job.get("host") or url.hostname, "Connection": "close"}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        headers.update(job.get("headers", {}))
        conn.request(job.get("method", "GET"), url.path or "/", body=body, headers=headers)
        response = conn.getresponse()
        text = response.read(4096).decode("utf-8", "replace")
        conn.close()
        return response.status, None, text
    except (OSError, http.client.HTTPException) as error:
        return None, f"{type(error).__name__}: {error}", ""


def main() -> None:
    mode, spec = sys.argv[1], json.loads(sys.argv[2])
    if mode == "get":
        out = {}
        for job in spec:
            status, error, body = request(job, timeout=job.get("timeout", 3.0))
            out[job["label"]] = {"status": status, "error": error, "body": body}
        print(json.dumps(out))
        return
    if mode == "load":
        samples = []
        while not os.path.exists(spec["stop"]):
            start = time.monotonic()
            status, _, _ = request(spec, timeout=2.0)
            samples.append([start, time.monotonic(), status])
            time.sleep(spec.get("pause", 0.02))
        print(json.dumps(samples))
        return
    sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
