"""The 60-second version of bench/soak.py for CI (issue 10): a stream with random seeks and pauses while torrents are
added and removed; the memory budget is respected, RSS stays flat and every byte read is correct."""
import os
import subprocess
import sys

src = os.environ.get("PLAYHEAD_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
r = subprocess.run([sys.executable, os.path.join(src, "bench", "soak.py"), "--seconds", "60", "--sample", "2"],
                   timeout=300)
sys.exit(r.returncode)
