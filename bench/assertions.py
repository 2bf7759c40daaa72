"""Client assertions for the private_key_jwt benchmark (bench/run.sh).

  assertions.py keys DIR                 writes DIR/{eddsa,es256,cluster}.pem and .jwks.json
  assertions.py own DIR ALG CLIENTS N AUD   N lines "body:<form>", each a fresh
                                            assertion (new jti) of one of CLIENTS
  assertions.py federated DIR CLIENTS AUD ISS   one line per client: a
                                            Kubernetes-shaped token, repeated by wrk
  assertions.py dpop DIR ALG N HTU CREDS    N lines "dpop:<Authorization>\t<proof>":
                                            a fresh DPoP proof (RFC 9449) each, with
                                            the clients' Basic headers from CREDS

Needs the `cryptography` package (python3 has it on Debian; or pip install cryptography).
"""

import base64
import json
import os
import sys
import time
import urllib.parse

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def load(directory: str, name: str):
    with open(os.path.join(directory, f"{name}.pem"), "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def jwk(key, kid: str) -> dict:
    public = key.public_key()
    if isinstance(public, ed25519.Ed25519PublicKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(raw)}
    numbers = public.public_numbers()
    return {"kty": "EC", "crv": "P-256", "kid": kid,
            "x": b64(numbers.x.to_bytes(32, "big")), "y": b64(numbers.y.to_bytes(32, "big"))}


def sign(key, alg: str, kid: str, claims: dict, header: dict | None = None) -> str:
    header = b64(json.dumps(header or {"alg": alg, "kid": kid, "typ": "JWT"}, separators=(",", ":")).encode())
    payload = b64(json.dumps(claims, separators=(",", ":")).encode())
    message = f"{header}.{payload}".encode()
    if alg == "EdDSA":
        signature = key.sign(message)
    else:
        r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return f"{header}.{payload}.{b64(signature)}"


def body(assertion: str) -> str:
    return "body:" + urllib.parse.urlencode({
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    })


def main() -> None:
    mode, directory = sys.argv[1], sys.argv[2]
    if mode == "keys":
        for name, key in (("eddsa", ed25519.Ed25519PrivateKey.generate()),
                          ("es256", ec.generate_private_key(ec.SECP256R1())),
                          ("cluster", ec.generate_private_key(ec.SECP256R1()))):
            with open(os.path.join(directory, f"{name}.pem"), "wb") as f:
                f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
            with open(os.path.join(directory, f"{name}.jwks.json"), "w", encoding="ascii") as f:
                json.dump({"keys": [jwk(key, name)]}, f)
    elif mode == "own":
        alg, clients, count, audience = sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
        key = load(directory, alg.lower())
        now = int(time.time())
        out = sys.stdout
        for n in range(count):
            client = f"bench-{alg.lower()}-{n % clients + 1}"
            claims = {"iss": client, "sub": client, "aud": audience, "iat": now,
                      "exp": now + 3600, "jti": f"{n:x}-{os.urandom(6).hex()}"}
            out.write(body(sign(key, "EdDSA" if alg == "EdDSA" else "ES256", alg.lower(), claims)) + "\n")
    elif mode == "federated":
        clients, audience, issuer = int(sys.argv[3]), sys.argv[4], sys.argv[5]
        key = load(directory, "cluster")
        now = int(time.time())
        for n in range(clients):
            claims = {"iss": issuer, "sub": f"system:serviceaccount:bench:sa-{n + 1}", "aud": [audience],
                      "iat": now, "nbf": now, "exp": now + 3000,
                      "kubernetes.io": {"namespace": "bench", "serviceaccount": {"name": f"sa-{n + 1}"}}}
            print(body(sign(key, "ES256", "cluster", claims)))
    elif mode == "dpop":
        alg, count, htu, creds = sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]
        key = load(directory, alg.lower())
        public = jwk(key, "")
        del public["kid"]
        name = "EdDSA" if alg == "EdDSA" else "ES256"
        header = {"typ": "dpop+jwt", "alg": name, "jwk": public}
        with open(creds, encoding="ascii") as f:
            authorizations = [line.strip() for line in f if line.strip()]
        # Stamped half a minute ahead: still inside the ±60 s window while
        # the file is written, the server starts and the load runs.
        iat = int(time.time()) + 30
        out = sys.stdout
        for n in range(count):
            claims = {"jti": f"{n:x}-{os.urandom(6).hex()}", "htm": "POST", "htu": htu, "iat": iat}
            proof = sign(key, name, "", claims, header)
            out.write(f"dpop:{authorizations[n % len(authorizations)]}\t{proof}\n")


if __name__ == "__main__":
    main()
