"""Waits for Ctrl-C; exits 42 when interrupted once, so the tests can see forwarding."""
import sys
import time

print("ready", flush=True)
try:
    time.sleep(60)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(42)
sys.exit(1)
