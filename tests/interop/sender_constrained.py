"""Sender-constrained tokens with stock libraries, unmodified.

DPoP (RFC 9449): PyJWT signs the proof, with the public key (from
`cryptography`) as the `jwk` header; `requests` sends it. mTLS (RFC 8705):
`requests` presents a client certificate. Each token is verified through the
JWKS with PyJWT, and its `cnf` is checked against a value computed here.
Usage:
  sender_constrained.py dpop ISSUER CLIENT_ID CLIENT_SECRET
  sender_constrained.py mtls BASE_URL CLIENT_ID CERT_PEM KEY_PEM SERVER_CERT_PEM
"""

import base64
import hashlib
import json
import ssl
import sys
import time
import uuid

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec, ed25519


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def thumbprint(jwk: dict) -> str:
    """RFC 7638: the required members, sorted, no white space, SHA-256."""
    required = {"EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x"), "RSA": ("e", "kty", "n")}
    canonical = json.dumps({k: jwk[k] for k in required[jwk["kty"]]}, separators=(",", ":"), sort_keys=True)
    return b64(hashlib.sha256(canonical.encode()).digest())


def verified_claims(issuer: str, token: str, **kwargs) -> dict:
    jwks = jwt.PyJWKClient(f"{issuer}/.well-known/jwks.json", **kwargs)
    key = jwks.get_signing_key_from_jwt(token)
    header = jwt.get_unverified_header(token)
    return jwt.decode(token, key.key, algorithms=[header["alg"]], options={"verify_aud": False})


def dpop(issuer: str, client_id: str, secret: str) -> None:
    metadata = requests.get(f"{issuer}/.well-known/oauth-authorization-server", timeout=10).json()
    token_endpoint = metadata["token_endpoint"]

    def ask(proof: str) -> requests.Response:
        return requests.post(
            token_endpoint,
            auth=(client_id, secret),
            data={"grant_type": "client_credentials"},
            headers={"DPoP": proof},
            timeout=10,
        )

    keys = [
        ("ES256", ec.generate_private_key(ec.SECP256R1()), jwt.algorithms.ECAlgorithm),
        ("EdDSA", ed25519.Ed25519PrivateKey.generate(), jwt.algorithms.OKPAlgorithm),
    ]
    for alg, private_key, algorithm in keys:
        assert alg in metadata["dpop_signing_alg_values_supported"], metadata
        jwk = json.loads(algorithm.to_jwk(private_key.public_key()))
        claims = {"jti": str(uuid.uuid4()), "htm": "POST", "htu": token_endpoint, "iat": int(time.time())}
        proof = jwt.encode(claims, private_key, algorithm=alg, headers={"typ": "dpop+jwt", "jwk": jwk})
        response = ask(proof)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["token_type"] == "DPoP", body
        claims = verified_claims(issuer, body["access_token"])
        assert claims["cnf"] == {"jkt": thumbprint(jwk)}, claims
        print(f"{alg}: DPoP-bound token verified through the JWKS")
        replay = ask(proof)
        assert replay.status_code == 400 and replay.json()["error"] == "invalid_dpop_proof", replay.text
        print(f"{alg}: replayed proof refused")


def mtls(base: str, client_id: str, cert: str, key: str, server_cert: str) -> None:
    response = requests.post(
        f"{base}/token",
        data={"grant_type": "client_credentials", "client_id": client_id},
        cert=(cert, key),
        verify=server_cert,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    with open(cert, encoding="ascii") as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    claims = verified_claims(base, token, ssl_context=ssl.create_default_context(cafile=server_cert))
    assert claims["cnf"] == {"x5t#S256": b64(hashlib.sha256(der).digest())}, claims
    print("certificate-bound token verified through the JWKS")
    without = requests.post(
        f"{base}/token",
        data={"grant_type": "client_credentials", "client_id": client_id},
        verify=server_cert,
        timeout=10,
    )
    assert without.status_code == 401, without.text
    print("no certificate refused")


if __name__ == "__main__":
    {"dpop": dpop, "mtls": mtls}[sys.argv[1]](*sys.argv[2:])
