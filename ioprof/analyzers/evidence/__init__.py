"""What the captures say, per kind of evidence: steps, the tf.data pipeline, host I/O and CPU,
storage volumes, Python stacks, run-wide KPIs.
"""
