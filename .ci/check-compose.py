"""Checks docker-compose.yml without a Docker engine: it parses, the
tokenmint service builds from this Dockerfile, waits for a healthy
Postgres, gets the settings it requires, and Postgres keeps a named volume."""

import sys

import yaml

compose = yaml.safe_load(open(sys.argv[1]))
services = compose["services"]
app, db = services["tokenmint"], services["postgres"]
assert app["build"] == ".", "tokenmint builds from the repository's Dockerfile"
assert app["depends_on"]["postgres"]["condition"] == "service_healthy", "health-gated start"
assert "healthcheck" in db, "postgres has a health check"
env = app["environment"]
for name in ("DATABASE_URL", "TOKENMINT_KEY_ENCRYPTION_KEY"):
    assert name in env, f"tokenmint needs {name}"
assert env["DATABASE_URL"].startswith("postgres://"), "DATABASE_URL is a postgres URL"
volume = db["volumes"][0].split(":")[0]
assert volume in compose["volumes"], "postgres data is on a named volume"
print("docker-compose.yml: ok")
