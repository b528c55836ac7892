"""Elementwise work over long vectors, in cache-sized chunks.

A numpy expression such as ``p -= lr * m / (np.sqrt(v) + eps)`` makes a full
pass (and a full-size temporary) per operation. :func:`in_chunks` and
:func:`over_range` run the same passes chunk by chunk, so each chunk stays in
cache and the only temporary is one small scratch array.
"""

import numpy as np

CHUNK = 1 << 15  # elements per chunk: 128 KiB of float32, 256 KiB of float64


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
