#!/usr/bin/python3
# ckpt_close.py A B TOL [--over]: the checkpoints' weights, optimizer state and
# batchnorm statistics (every float after the header) within TOL of each
# other (absolute), or with --over at least TOL apart somewhere.
import json, struct, sys
import numpy as np
def state(p):
    d = open(p, "rb").read(); (h,) = struct.unpack_from("<I", d, 12)
    return np.frombuffer(d[16 + h:-8], dtype="<f4").astype(np.float64), json.loads(d[16:16 + h])
(a, ha), (b, hb) = state(sys.argv[1]), state(sys.argv[2])
tol, over = float(sys.argv[3]), "--over" in sys.argv
assert ha["epoch"] == hb["epoch"] and ha["optimizer"]["step"] == hb["optimizer"]["step"], (ha, hb)
d = np.abs(a - b).max()
print(f"{sys.argv[1]} against {sys.argv[2]}: {len(a)} floats, max |difference| {d:.3g}"
      f" ({'at least' if over else 'tolerance'} {tol:g}), {int((a != b).sum())} differ")
assert (d >= tol) if over else (d <= tol), d
