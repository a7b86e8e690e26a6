"""The job's own sitecustomize: ioprof's must chain-load it, not shadow it."""
import os

os.environ["OWN_SITE_RAN"] = "yes"
