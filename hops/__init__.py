"""Seed-compatible import path: `from hops import hdfs, experiment, ...`.

Each submodule here is the matching `hops_jupyter.core` module itself (no logic of its own).
"""
