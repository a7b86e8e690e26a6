"""What the run's records say, per kind of evidence: steps, the tf.data pipeline, the model's
layers, host I/O and CPU, storage volumes, Python stacks and py-spy's split of the steps,
callbacks, run-wide KPIs. `gather.py` puts it all in one `RunEvidence`, with no verdict in it.
"""
