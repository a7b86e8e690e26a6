"""Deciding from the evidence: attribution of step time, the bottleneck and its culprits, Python
input, contention, callbacks and layers, where each line came from, whether the evidence
suffices, and what to change.
"""
