# Included by _speedups_c.pyx (textually: it shares that module's imports and names).

# ---------------------------------------------------------------------------------------------
# Idle connection pool: per-key MRU stacks and one global LRU list, threaded through the same
# nodes (intrusive doubly-linked lists), so that every operation but the scans is O(1).

@cython.final
@cython.freelist(32)
cdef class _Node:
    cdef object key, conn
    cdef _Node older, newer  # global LRU order
    cdef _Node below  # the key's stack, towards older; _Stack.top is the newest
    cdef _Node above
    cdef _Stack stack


@cython.final
cdef class _Stack:
    cdef _Node top
    cdef Py_ssize_t n


cdef class IdleConnections:
    """Idle connections by pool key: the most recently used first within a key, and the least
    recently used across all keys evicted first (Go's ``idleConn`` and ``idleLRU``).

    Connections must carry an ``idle_since`` attribute (a ``time.monotonic()`` value) set by the
    caller before ``put``. Not thread-safe: the pool holds its lock around every call.
    """

    cdef Py_ssize_t _max_idle, _max_idle_per_key
    cdef dict _by_key  # key -> _Stack, in first-put order like the py twin's dict
    cdef dict _by_id  # id(conn) -> _Node
    cdef _Node _oldest, _newest

    def __init__(self, max_idle, max_idle_per_key):
        self._max_idle = max_idle  # 0 = no limit
        self._max_idle_per_key = max_idle_per_key  # < 1 = keep none
        self._by_key = {}
        self._by_id = {}

    def __len__(self):
        return len(self._by_id)

    def count(self, key):
        """Idle connections under ``key``."""
        stack = self._by_key.get(key)
        return 0 if stack is None else (<_Stack>stack).n

    def keys(self):
        """Keys with at least one idle connection."""
        return list(self._by_key)

    def get(self, key):
        """Take the most recently used idle connection for ``key``, or ``None``."""
        cdef _Stack stack = self._by_key.get(key)
        cdef _Node node
        if stack is None:
            return None
        node = stack.top
        self._unlink(node)
        return node.conn

    def put(self, key, conn):
        """Keep ``conn`` idle; return the connections that must now be closed (possibly
        ``conn`` itself when its key is full)."""
        cdef _Stack stack
        cdef _Node node = self._by_id.get(PyLong_FromVoidPtr(<void*>conn)), old
        if node is not None:  # already idle (a caller bug the py twin does not catch): re-put it
            self._unlink(node)
        stack = self._by_key.get(key)
        if stack is not None and stack.n >= self._max_idle_per_key:
            return [conn]
        if self._max_idle_per_key < 1:
            return [conn]
        if stack is None:
            stack = _Stack()
            self._by_key[key] = stack
        node = _Node()
        node.key, node.conn, node.stack = key, conn, stack
        node.below = stack.top
        if stack.top is not None:
            stack.top.above = node
        stack.top = node
        stack.n += 1
        node.older = self._newest
        if self._newest is not None:
            self._newest.newer = node
        else:
            self._oldest = node
        self._newest = node
        self._by_id[PyLong_FromVoidPtr(<void*>conn)] = node
        evicted = []
        while self._max_idle > 0 and len(self._by_id) > self._max_idle:
            old = self._oldest
            self._unlink(old)
            evicted.append(old.conn)
        return evicted

    def remove(self, key, conn):
        """Forget ``conn`` if it is idle; whether it was."""
        cdef _Node node = self._by_id.get(PyLong_FromVoidPtr(<void*>conn))
        if node is None:
            return False
        self._unlink(node)
        return True

    def pop_expired(self, cutoff):
        """Remove and return every connection idle since before ``cutoff``."""
        cdef _Node node
        expired = []
        while self._oldest is not None:
            node = self._oldest
            if node.conn.idle_since >= cutoff:
                break
            self._unlink(node)
            expired.append(node.conn)
        return expired

    def oldest_idle_since(self):
        """When the least recently used connection went idle, or ``None`` if there is none."""
        if self._oldest is None:
            return None
        return self._oldest.conn.idle_since

    def pop_all(self):
        """Remove and return every idle connection."""
        conns = []
        while self._oldest is not None:
            conns.append(self._oldest.conn)
            self._unlink(self._oldest)
        return conns

    cdef int _unlink(self, _Node node) except -1:
        cdef _Stack stack = node.stack
        if node.older is None:
            self._oldest = node.newer
        else:
            node.older.newer = node.newer
        if node.newer is None:
            self._newest = node.older
        else:
            node.newer.older = node.older
        if node.above is None:
            stack.top = node.below
        else:
            node.above.below = node.below
        if node.below is not None:
            node.below.above = node.above
        stack.n -= 1
        if stack.n == 0:
            del self._by_key[node.key]
        del self._by_id[PyLong_FromVoidPtr(<void*>node.conn)]
        node.older = node.newer = node.below = node.above = None
        node.stack = None
        return 0
