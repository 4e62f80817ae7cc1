"""The Erlang-facing edge of pyra: Ra 2.2.0's records, client protocol, peer transport and rpc targets.

Owns: everything an Erlang node sees of a Python Ra server (the exact terms and envelopes of
ra-internals §1-§5 and §9.3). Must not: contain Raft logic (``pyra_dist.core``) or storage.
Importing this package has no side effects.
"""
