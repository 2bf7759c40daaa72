"""Checks docker-compose.yml without a Docker engine: it parses, the
tokenmint service builds from this Dockerfile, waits for a healthy
Postgres, gets the settings it requires (the key-encryption key as a Docker
secret, not an environment variable), and Postgres keeps a named volume."""

import os
import sys

import yaml

compose = yaml.safe_load(open(sys.argv[1]))
services = compose["services"]
app, db = services["tokenmint"], services["postgres"]
assert app["build"] == ".", "tokenmint builds from the repository's Dockerfile"
assert app["depends_on"]["postgres"]["condition"] == "service_healthy", "health-gated start"
assert "healthcheck" in db, "postgres has a health check"
env = app["environment"]
assert "DATABASE_URL" in env, "tokenmint needs DATABASE_URL"
assert "TOKENMINT_KEY_ENCRYPTION_KEY" not in env, "the key-encryption key is not in the environment"
kek_file = env["TOKENMINT_KEY_ENCRYPTION_KEY_FILE"]
secret = kek_file.removeprefix("/run/secrets/")
assert kek_file.startswith("/run/secrets/"), "the key-encryption key is a Docker secret"
assert secret in app["secrets"] and secret in compose["secrets"], "the secret is declared and given"
assert env["DATABASE_URL"].startswith("postgres://"), "DATABASE_URL is a postgres URL"
volume = db["volumes"][0].split(":")[0]
assert volume in compose["volumes"], "postgres data is on a named volume"
apply = env["TOKENMINT_APPLY_FILE"]
mounted = {v.split(":")[1]: v.split(":")[0] for v in app["volumes"]}
assert mounted.get(apply, "").startswith("./config/"), "the applied file is mounted from config/"
assert os.path.exists(mounted[apply]), "the applied file exists"
for secret_name in app["secrets"]:
    assert secret_name in compose["secrets"], f"secret {secret_name} is declared"
print("docker-compose.yml: ok")
