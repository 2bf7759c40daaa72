"""How long a change made on one instance takes to reach another
(bench/propagation.sh). For each of ROUNDS fresh clients: warm it on B,
disable it through A's admin API, then ask B for a token every millisecond
until it is refused; prints the delays (from the disabling request to the
first refused request's sending: its upper bound, within a poll).

Usage: propagation.py A_URL B_URL ADMIN_TOKEN ROUNDS
"""

import base64
import http.client
import json
import statistics
import sys
import time
import urllib.parse


def connect(url: str) -> http.client.HTTPConnection:
    parts = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)


def call(conn, method, path, body=None, headers=None):
    conn.request(method, path, body, headers or {})
    response = conn.getresponse()
    return response.status, response.read()


def main() -> None:
    a_url, b_url, token, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    a, b = connect(a_url), connect(b_url)
    admin = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    delays = []
    for n in range(rounds):
        client_id = f"propagation-{n}-{time.time_ns()}"
        status, body = call(a, "POST", "/admin/clients", json.dumps({"client_id": client_id}), admin)
        assert status == 201, body
        secret = json.loads(body)["client_secret"]
        basic = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        form = {"Authorization": basic, "Content-Type": "application/x-www-form-urlencoded"}
        for _ in range(2):  # warm on B: verified, and its row in memory
            status, body = call(b, "POST", "/token", "grant_type=client_credentials", form)
            assert status == 200, body
        started = time.monotonic()
        status, body = call(a, "PATCH", f"/admin/clients/{client_id}", json.dumps({"enabled": False}), admin)
        assert status == 200, body
        # A refusal is answered only after the time of two strong argon2
        # verifications (on purpose): the delay is to when the first refused
        # request was sent, not to its answer.
        while True:
            sent = time.monotonic()
            status, _ = call(b, "POST", "/token", "grant_type=client_credentials", form)
            if status == 401:
                break
            time.sleep(0.001)
        delays.append((sent - started) * 1000)
    delays.sort()
    print(f"PROPAGATION rounds={rounds} p50_ms={statistics.median(delays):.1f} "
          f"max_ms={delays[-1]:.1f} min_ms={delays[0]:.1f}")


if __name__ == "__main__":
    main()
