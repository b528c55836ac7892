"""Elementwise work over long vectors: in cache-sized chunks, on one or two threads.

A numpy expression such as ``p -= lr * m / (np.sqrt(v) + eps)`` makes a full
pass (and a full-size temporary) per operation. :func:`in_chunks` and
:func:`over_range` run the same passes chunk by chunk, so each chunk stays in
cache and the only temporary is one small scratch array. In a split fit
(``_parallel.py``) each of two threads takes one part of the vector
(:func:`part_bounds`) in chunks of ``THREAD_CHUNK``; :func:`_pool_map` runs
such work on the calling thread and a pool thread at once (numpy releases the
GIL inside ufuncs).
"""

import os
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

CHUNK = 1 << 15  # elements per chunk: 128 KiB of float32, 256 KiB of float64
# Per chunk when two threads share the work: every ufunc call hands the GIL
# over, so fewer, larger calls scale better (2^15: 4.4 ms, 2^18: 3.0 ms per
# Adam step of the wide benchmark network).
THREAD_CHUNK = 1 << 18
_N_THREADS = min(2, os.cpu_count() or 1)
_pool = None


def _executor():
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(
            max_workers=_N_THREADS, thread_name_prefix="skmlp-chunks"
        )
    return _pool


def _pool_map(fn, items):
    """[fn(item) for item in items], the first on the calling thread and the
    others on the pool at the same time; returns once every call has finished.

    Even when interrupted (Ctrl-C arrives in the calling thread), the calls
    already running finish before the exception propagates, so no worker is
    still writing to the arrays when the caller handles it.
    """
    first, *rest = items
    futures = [_executor().submit(fn, item) for item in rest]
    try:
        return [fn(first)] + [future.result() for future in futures]
    finally:
        wait(futures)


def part_bounds(size, part, n_parts):
    """[start, stop) of part ``part`` when ``size`` elements are cut in n_parts."""
    return size * part // n_parts, size * (part + 1) // n_parts


def over_range(update, arrays, start, stop, chunk=CHUNK):
    """``update(*chunk_views, scratch)`` over [start, stop) of the arrays, in
    chunks of at most ``chunk`` elements (the scratch array is shared)."""
    if stop <= start:
        return
    scratch = np.empty(min(chunk, stop - start), dtype=arrays[0].dtype)
    for begin in range(start, stop, chunk):
        end = min(begin + chunk, stop)
        update(*(a[begin:end] for a in arrays), scratch[: end - begin])


def in_chunks(update, arrays):
    """Apply ``update(*chunk_views, scratch)`` to every chunk of equal-size arrays.

    ``update`` sees matching slices of each array plus a scratch array of the
    same size; it must only do elementwise work.
    """
    size = arrays[0].size
    if size <= CHUNK:  # one chunk: no bookkeeping (small networks, every step)
        update(*arrays, np.empty(size, dtype=arrays[0].dtype))
        return
    over_range(update, arrays, 0, size)
