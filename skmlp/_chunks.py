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


def n_parts_for(size, n_threads):
    """How many threads share a vector of ``size`` elements (1 below 2 CHUNKs)."""
    return min(n_threads, _N_THREADS) if size >= 2 * CHUNK else 1


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
    n_parts = n_parts_for(size, n_threads)
    if n_parts == 1:
        over_range(update, arrays, 0, size)
        return
    _pool_map(
        lambda part: over_range(
            update, arrays, *part_bounds(size, part, n_parts), THREAD_CHUNK
        ),
        range(n_parts),
    )
