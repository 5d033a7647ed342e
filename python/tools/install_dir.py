"""Prints where `cmake --install` should put the packages, relative to the
prefix given as argv[1]: the dist-packages or site-packages directory of this
interpreter's version under that prefix, preferring one already on sys.path
(Debian's python3 searches /usr/local/lib/python3.X/dist-packages)."""
import os
import sys

prefix = sys.argv[1]
ver = f"python{sys.version_info[0]}.{sys.version_info[1]}"
candidates = [f"lib/{ver}/dist-packages", f"lib/{ver}/site-packages"]
on_path = [c for c in candidates if os.path.join(prefix, c) in sys.path]
print(on_path[0] if on_path else candidates[1])
