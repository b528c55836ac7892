"""A bounded table of recent entries, safe to share between threads: the
caches of a one-row predict (``_preprocessing._DtypeCodes``,
``_tabular._NetworkCache``) keep what they built here, and check themselves
that an entry still belongs to the object they are asked about."""

import collections
import threading


class RecentEntries:
    """At most ``size`` entries; the least recently used one goes first."""

    def __init__(self, size):
        self.size, self.lock = size, threading.Lock()
        self.entries = collections.OrderedDict()

    def get(self, key):
        """The entry stored under key, or None."""
        with self.lock:
            entry = self.entries.get(key)
            if entry is not None:
                self.entries.move_to_end(key)
            return entry

    def put(self, key, entry):
        with self.lock:
            self.entries[key] = entry
            self.entries.move_to_end(key)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)
