"""The audit log: records of every access and disclosure, and (in merkle/checkpoint) their proofs."""
