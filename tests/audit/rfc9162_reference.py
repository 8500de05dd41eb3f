"""An independent reference for the tests: RFC 9162 §2.1 transcribed step by step.

Deliberately slow and literal, and sharing no code with `consult.audit.merkle`,
so that a bug there cannot hide behind the same bug here.
Source: https://www.rfc-editor.org/rfc/rfc9162 §2.1.1, §2.1.3.1, §2.1.3.2,
§2.1.4.1 and §2.1.4.2.
"""

from __future__ import annotations

import hashlib


def HASH(data: bytes) -> bytes:  # noqa: N802 - the RFC's name
    return hashlib.sha256(data).digest()


def largest_power_of_two_below(n: int) -> int:
    """'the largest power of two smaller than n' (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


# §2.1.1 Definition of the Merkle Tree ------------------------------------------


def MTH(D: list[bytes]) -> bytes:  # noqa: N802,N803
    """MTH(D_n) over raw entries D, recursively."""
    n = len(D)
    if n == 0:
        return HASH(b"")
    if n == 1:
        return HASH(b"\x00" + D[0])
    k = largest_power_of_two_below(n)
    return HASH(b"\x01" + MTH(D[0:k]) + MTH(D[k:n]))


# §2.1.3.1 Generating an Inclusion Proof --------------------------------------------


def PATH(m: int, D: list[bytes]) -> list[bytes]:  # noqa: N802,N803
    n = len(D)
    assert 0 <= m < n
    if n == 1:
        return []
    k = largest_power_of_two_below(n)
    if m < k:
        return PATH(m, D[0:k]) + [MTH(D[k:n])]
    return PATH(m - k, D[k:n]) + [MTH(D[0:k])]


# §2.1.4.1 Generating a Consistency Proof -------------------------------------------


def PROOF(m: int, D: list[bytes]) -> list[bytes]:  # noqa: N802,N803
    return SUBPROOF(m, D, True)


def SUBPROOF(m: int, D: list[bytes], b: bool) -> list[bytes]:  # noqa: N802,N803
    n = len(D)
    if m == n:
        return [] if b else [MTH(D)]
    assert m < n
    k = largest_power_of_two_below(n)
    if m <= k:
        return SUBPROOF(m, D[0:k], b) + [MTH(D[k:n])]
    return SUBPROOF(m - k, D[k:n], False) + [MTH(D[0:k])]


# §2.1.3.2 Verifying an Inclusion Proof ---------------------------------------------


def LSB(x: int) -> bool:  # noqa: N802
    return x & 1 == 1


def verify_inclusion(
    hash: bytes, leaf_index: int, tree_size: int, inclusion_path: list[bytes], root_hash: bytes
) -> bool:
    # 1. If leaf_index is greater than or equal to tree_size, fail.
    if leaf_index >= tree_size:
        return False
    # 2. Set fn to leaf_index and sn to tree_size - 1.
    fn = leaf_index
    sn = tree_size - 1
    # 3. Set r to hash.
    r = hash
    # 4. For each value p in the inclusion_path array:
    for p in inclusion_path:
        # a. If sn is 0, then stop the iteration and fail the proof verification.
        if sn == 0:
            return False
        # b. If LSB(fn) is set, or if fn is equal to sn, then:
        if LSB(fn) or fn == sn:
            # i. Set r to HASH(0x01 || p || r).
            r = HASH(b"\x01" + p + r)
            # ii. If LSB(fn) is not set, then right-shift both fn and sn
            #     equally until either LSB(fn) is set or fn is 0.
            if not LSB(fn):
                while not (LSB(fn) or fn == 0):
                    fn >>= 1
                    sn >>= 1
        # Otherwise:
        else:
            # i. Set r to HASH(0x01 || r || p).
            r = HASH(b"\x01" + r + p)
        # c. Finally, right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 5. If sn is equal to 0 and r and the root_hash are equal, the log has
    #    proven the inclusion of hash. Otherwise, fail.
    return sn == 0 and r == root_hash


# §2.1.4.2 Verifying Consistency between Two Tree Heads -----------------------------


def verify_consistency(
    first: int, second: int, first_hash: bytes, second_hash: bytes, consistency_path: list[bytes]
) -> bool:
    consistency_path = list(consistency_path)
    # 1. If consistency_path is an empty array, stop and fail the proof verification.
    if not consistency_path:
        return False
    # 2. If first is an exact power of 2, then prepend first_hash to the
    #    consistency_path array.
    if first & (first - 1) == 0:
        consistency_path.insert(0, first_hash)
    # 3. Set fn to first - 1 and sn to second - 1.
    fn = first - 1
    sn = second - 1
    # 4. If LSB(fn) is set, then right-shift both fn and sn equally until
    #    LSB(fn) is not set.
    while LSB(fn):
        fn >>= 1
        sn >>= 1
    # 5. Set both fr and sr to the first value in the consistency_path array.
    fr = consistency_path[0]
    sr = consistency_path[0]
    # 6. For each subsequent value c in the consistency_path array:
    for c in consistency_path[1:]:
        # a. If sn is 0, then stop the iteration and fail the proof verification.
        if sn == 0:
            return False
        # b. If LSB(fn) is set, or if fn is equal to sn, then:
        if LSB(fn) or fn == sn:
            # i. Set fr to HASH(0x01 || c || fr).
            fr = HASH(b"\x01" + c + fr)
            # ii. Set sr to HASH(0x01 || c || sr).
            sr = HASH(b"\x01" + c + sr)
            # iii. If LSB(fn) is not set, then right-shift both fn and sn
            #      equally until either LSB(fn) is set or fn is 0.
            if not LSB(fn):
                while not (LSB(fn) or fn == 0):
                    fn >>= 1
                    sn >>= 1
        # Otherwise:
        else:
            # i. Set sr to HASH(0x01 || sr || c).
            sr = HASH(b"\x01" + sr + c)
        # c. Finally, right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 7. Verify that fr equals first_hash, sr equals second_hash, and sn is 0.
    return fr == first_hash and sr == second_hash and sn == 0
