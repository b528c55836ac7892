"""Elementwise work over long vectors: in cache-sized chunks, on two threads.

A numpy expression such as ``p -= lr * m / (np.sqrt(v) + eps)`` makes a full
pass (and a full-size temporary) per operation, on one core, while the matmuls
around it use every core. :func:`in_chunks` runs the same passes chunk by
chunk, so each chunk stays in cache and the only temporary is one small
scratch array, and can split long vectors between two threads (numpy
releases the GIL inside ufuncs).
"""

import os
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

CHUNK = 1 << 15  # elements per chunk: 128 KiB of float32, 256 KiB of float64
THREAD_CHUNK = 1 << 18  # per chunk when two threads share the work
_N_THREADS = min(2, os.cpu_count() or 1)
_pool = None


def _pool_map(fn, items):
    """[fn(item) for item in items], the first on the calling thread and the
    others on the pool at the same time; returns once every call has finished.

    Even when interrupted (Ctrl-C arrives in the calling thread), the calls
    already running finish before the exception propagates, so no worker is
    still writing to the arrays when the caller handles it.
    """
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(
            max_workers=_N_THREADS, thread_name_prefix="skmlp-chunks"
        )
    first, *rest = items
    futures = [_pool.submit(fn, item) for item in rest]
    try:
        return [fn(first)] + [future.result() for future in futures]
    finally:
        wait(futures)


def in_chunks(update, arrays, n_threads=1):
    """Apply ``update(*chunk_views, scratch)`` to every chunk of equal-size arrays.

    ``update`` sees matching slices of each array plus a scratch array of the
    same size; it must only do elementwise work. With ``n_threads=2``, vectors
    of at least ``2 * CHUNK`` elements are split in two halves, one per
    thread, each walked in chunks of up to ``THREAD_CHUNK`` elements (larger
    than ``CHUNK``: every ufunc call hands the GIL over, so fewer calls scale
    better). Ask for threads only while BLAS is single-threaded (see
    ``_parallel.py``): otherwise OpenBLAS's idle workers keep the other core
    busy and a second thread gains nothing.
    """
    size = arrays[0].size
    if size <= CHUNK:  # one chunk: no bookkeeping (small networks, every step)
        update(*arrays, np.empty(size, dtype=arrays[0].dtype))
        return
    n_parts = min(n_threads, _N_THREADS) if size >= 2 * CHUNK else 1
    chunk = CHUNK if n_parts == 1 else THREAD_CHUNK
    bounds = [size * part // n_parts for part in range(n_parts + 1)]

    def run(part):
        part_size = bounds[part + 1] - bounds[part]
        scratch = np.empty(min(chunk, part_size), dtype=arrays[0].dtype)
        for start in range(bounds[part], bounds[part + 1], chunk):
            stop = min(start + chunk, bounds[part + 1])
            update(*(a[start:stop] for a in arrays), scratch[: stop - start])

    if n_parts == 1:
        run(0)
    else:
        _pool_map(run, range(n_parts))
