"""Creates N clients through the admin API (one keep-alive connection) and
prints one "Basic ..." Authorization line per client: the restart storm's
fleet (bench/run.sh, STORM=1).

Usage: clients.py BASE_URL ADMIN_TOKEN N PREFIX
"""

import base64
import http.client
import json
import sys
import urllib.parse


def main() -> None:
    base, token, count, prefix = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    url = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for n in range(count):
        client_id = f"{prefix}-{n}"
        body = json.dumps({"client_id": client_id, "scopes": ["orders:read"]})
        connection.request("POST", "/admin/clients", body, headers)
        response = connection.getresponse()
        created = json.loads(response.read())
        if response.status != 201:
            raise SystemExit(f"creating {client_id}: {response.status} {created}")
        credentials = f"{client_id}:{created['client_secret']}".encode()
        print("Basic " + base64.b64encode(credentials).decode())


if __name__ == "__main__":
    main()
