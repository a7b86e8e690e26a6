"""Prints what a grandchild of the traced job sees, and whether the job's sitecustomize ran."""
import json
import os
import subprocess
import sys

child = subprocess.run(
    [sys.executable, "-c", "import json,os,sys; print(json.dumps({k: v for k, v in "
     "os.environ.items() if k.startswith('IOPROF') or k == 'PYTHONPATH'}))"],
    capture_output=True, text=True, check=True,
)
print(json.dumps({
    "grandchild_env": json.loads(child.stdout),
    "own_site_ran": os.environ.get("OWN_SITE_RAN"),
    "pythonpath": os.environ.get("PYTHONPATH"),
    "bootstrap_loaded": "_ioprof_bootstrap" in sys.modules,
}))
