"""Authentication: bearer token → ``Principal``, or one ``AuthError``."""

from consult.auth.tokens import AuthError, Session, TokenVerifier, TrustedKey, load_jwks_file, parse_jwks

__all__ = ["AuthError", "Session", "TokenVerifier", "TrustedKey", "load_jwks_file", "parse_jwks"]
