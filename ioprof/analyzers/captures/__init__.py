"""Reading what the collectors left: the TF capture (wire format, xplane, the one-pass scan, XLA
instructions and HLO text), the run directory and its records.
"""
