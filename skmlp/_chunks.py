"""Elementwise work over long vectors: in cache-sized chunks, on two threads.

A numpy expression such as ``p -= lr * m / (np.sqrt(v) + eps)`` makes a full
pass (and a full-size temporary) per operation, on one core, while the matmuls
around it use every core. :func:`in_chunks` runs the same passes chunk by
chunk, so each chunk stays in cache and the only temporary is one small
scratch array, and splits long vectors between two threads (numpy releases
the GIL inside ufuncs).
"""

import os
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

CHUNK = 1 << 15  # elements per chunk: 128 KiB of float32, 256 KiB of float64
_N_THREADS = min(2, os.cpu_count() or 1)
_pool = None


def _pool_map(fn, items):
    """fn over items on the pool; returns only once every call has finished.

    Even when interrupted (Ctrl-C arrives in the waiting main thread), the
    calls already running finish before the exception propagates, so no
    worker is still writing to the arrays when the caller handles it.
    """
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(
            max_workers=_N_THREADS, thread_name_prefix="skmlp-chunks"
        )
    futures = [_pool.submit(fn, item) for item in items]
    try:
        return [future.result() for future in futures]
    finally:
        wait(futures)


def in_chunks(update, arrays):
    """Apply ``update(*chunk_views, scratch)`` to every chunk of equal-size arrays.

    ``update`` sees matching slices of each array plus a scratch array of the
    same size; it must only do elementwise work. Vectors of at least
    ``4 * CHUNK`` elements are split between threads, each walking its part
    chunk by chunk.
    """
    size = arrays[0].size
    if size <= CHUNK:  # one chunk: no bookkeeping (small networks, every step)
        update(*arrays, np.empty(size, dtype=arrays[0].dtype))
        return
    n_parts = _N_THREADS if size >= 4 * CHUNK else 1
    bounds = [size * part // n_parts for part in range(n_parts + 1)]

    def run(part):
        scratch = np.empty(min(CHUNK, size), dtype=arrays[0].dtype)
        for start in range(bounds[part], bounds[part + 1], CHUNK):
            stop = min(start + CHUNK, bounds[part + 1])
            update(*(a[start:stop] for a in arrays), scratch[: stop - start])

    if n_parts == 1:
        run(0)
    else:
        _pool_map(run, range(n_parts))
