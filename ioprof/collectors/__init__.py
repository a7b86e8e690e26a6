"""Collectors: each watches the wrapped job one way and writes its own files in the run dir.

They share a small life cycle (see `base.Collector`): `prepare` may adjust the child's
environment before it starts, `start` attaches to the running child, `stop` finishes writing
after the child has ended and returns the manifest record. A collector that cannot work records
why and never stops the job.
"""
