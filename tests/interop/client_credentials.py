"""Stock client libraries against a running tokenmint, unmodified.

authlib discovers the token endpoint from the RFC 8414 metadata and runs the
client credentials grant with both authentication methods; PyJWT's
PyJWKClient verifies each token through the JWKS, with the RFC 9068 `typ`
checked. Usage: client_credentials.py ISSUER CLIENT_ID CLIENT_SECRET AUDIENCE
"""

import sys

import jwt
import requests
from authlib.integrations.requests_client import OAuth2Session


def main() -> None:
    issuer, client_id, client_secret, audience = sys.argv[1:5]
    metadata = requests.get(f"{issuer}/.well-known/oauth-authorization-server", timeout=10).json()
    assert metadata["issuer"] == issuer, metadata
    assert "client_credentials" in metadata["grant_types_supported"], metadata

    jwks = jwt.PyJWKClient(metadata["jwks_uri"])
    for method in ("client_secret_basic", "client_secret_post"):
        session = OAuth2Session(client_id, client_secret, token_endpoint_auth_method=method, scope="a")
        token = session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
        assert token["token_type"] == "Bearer", token
        access_token = token["access_token"]

        header = jwt.get_unverified_header(access_token)
        # RFC 9068 §4: resource servers MUST check typ.
        assert header["typ"] == "at+jwt", header
        signing_key = jwks.get_signing_key_from_jwt(access_token)
        claims = jwt.decode(
            access_token,
            signing_key.key,
            algorithms=[header["alg"]],
            audience=audience,
            issuer=issuer,
            options={"require": ["exp", "iat", "nbf", "iss", "sub", "aud", "jti"]},
        )
        assert claims["client_id"] == client_id and claims["sub"] == client_id, claims
        assert claims["scope"] == "a", claims
        assert claims["exp"] - claims["iat"] == token["expires_in"], (claims, token)
        print(f"{method}: {header['alg']} token verified through the JWKS")


if __name__ == "__main__":
    main()
