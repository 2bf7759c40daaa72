"""private_key_jwt (RFC 7523 §2.2) with stock client libraries, unmodified.

authlib's PrivateKeyJWT signs the client assertions for the client
credentials grant (audience: the token endpoint, a fresh jti each time, an
hour of lifetime — its defaults); PyJWT signs one by hand with the issuer as
audience and presents it at the introspection endpoint.
Usage: private_key_jwt.py ISSUER CLIENT_ID PRIVATE_KEY_PEM_FILE ALG
"""

import sys
import time
import uuid

import jwt
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc.jwk import ECKey, OKPKey, RSAKey

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def main() -> None:
    issuer, client_id, key_file, alg = sys.argv[1:5]
    with open(key_file, encoding="ascii") as f:
        pem = f.read()
    metadata = requests.get(f"{issuer}/.well-known/oauth-authorization-server", timeout=10).json()
    assert "private_key_jwt" in metadata["token_endpoint_auth_methods_supported"], metadata
    assert alg in metadata["token_endpoint_auth_signing_alg_values_supported"], metadata
    token_endpoint = metadata["token_endpoint"]

    key = {"RS256": RSAKey, "ES256": ECKey, "EdDSA": OKPKey}[alg].import_key(pem)
    session = OAuth2Session(client_id, key, token_endpoint_auth_method="private_key_jwt", scope="a")
    session.register_client_auth_method(PrivateKeyJWT(token_endpoint, alg=alg))
    for _ in range(2):  # a new assertion, with a new jti, each time
        token = session.fetch_token(token_endpoint, grant_type="client_credentials")
        assert token["token_type"] == "Bearer", token
    access_token = token["access_token"]
    signing_key = jwt.PyJWKClient(metadata["jwks_uri"]).get_signing_key_from_jwt(access_token)
    header = jwt.get_unverified_header(access_token)
    claims = jwt.decode(access_token, signing_key.key, algorithms=[header["alg"]], audience=issuer, issuer=issuer)
    assert claims["client_id"] == client_id and claims["scope"] == "a", claims

    now = int(time.time())
    assertion = jwt.encode(
        {"iss": client_id, "sub": client_id, "aud": issuer, "iat": now, "exp": now + 60, "jti": str(uuid.uuid4())},
        pem,
        algorithm=alg,
    )
    answer = requests.post(
        metadata["introspection_endpoint"],
        data={"token": access_token, "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["active"] is True, answer.text
    # The same assertion again is a replay.
    replay = requests.post(
        metadata["introspection_endpoint"],
        data={"token": access_token, "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion},
        timeout=10,
    )
    assert replay.status_code == 401 and replay.json()["error"] == "invalid_client", replay.text
    print(f"private_key_jwt {alg}: authlib and PyJWT assertions accepted, replay refused")


if __name__ == "__main__":
    main()
