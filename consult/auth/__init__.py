"""Authentication: bearer token → ``Principal``, or one ``AuthError``."""

from consult.auth.tokens import (
                                 AuthError,
                                 ClaimMapping,
                                 Issuer,
                                 Session,
                                 TokenVerifier,
                                 TrustedKey,
                                 UnknownKey,
                                 load_jwks_file,
                                 parse_jwks,
)

__all__ = ["AuthError", "ClaimMapping", "Issuer", "Session", "TokenVerifier", "TrustedKey", "UnknownKey",
           "load_jwks_file", "parse_jwks"]
