"""Authentication: bearer token → ``Principal``, or one ``AuthError``."""

from consult.auth.tokens import AuthError, TokenVerifier, TrustedKey, load_jwks_file, parse_jwks

__all__ = ["AuthError", "TokenVerifier", "TrustedKey", "load_jwks_file", "parse_jwks"]
