import os

# Tests and demos run TTLs in seconds.
os.environ.setdefault("REUSE_RUNTIME_MIN_TTL_SECONDS", "0")
