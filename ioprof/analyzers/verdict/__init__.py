"""Deciding from the evidence, once (`decide.py`): the bottleneck and its culprits (TF's chain,
Python input, contention, a waiting worker), the lines behind them (callbacks, layers,
provenance), whether the evidence suffices, and what to change.
"""
