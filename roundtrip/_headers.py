"""``Headers``: a case-insensitive, multi-valued, ordered mapping of header fields."""

from __future__ import annotations

from typing import Iterable, Iterator, Mapping, Tuple, TypeVar, Union, overload

__all__ = ("Headers", "HeadersLike", "response_facts")

_T = TypeVar("_T")

# Names and values are str; bytes are taken as latin-1 (``_text``).
HeadersLike = Union["Headers", Mapping[str, str], Iterable[Tuple[Union[str, bytes], Union[str, bytes]]], None]


def _text(item: object) -> str:
    # Names and values are str; bytes are taken as latin-1, the wire encoding.
    if type(item) is str:
        return item
    if isinstance(item, str):
        return str(item)
    if isinstance(item, (bytes, bytearray)):
        return bytes(item).decode("latin-1")
    raise TypeError(f"header names and values must be str, not {type(item).__name__}")


class Headers:
    """Header fields in order, looked up case-insensitively, spelled as given.

    ``Headers()`` accepts ``None``, another ``Headers``, a mapping, or an iterable of
    ``(name, value)`` pairs. ``len()`` counts fields and ``items()`` yields one pair per field,
    so a name given twice appears twice.
    """

    __slots__ = ("_items",)

    def __init__(self, headers: HeadersLike = None) -> None:
        self._items: list[tuple[str, str]]
        if headers is None:
            self._items = []
        elif isinstance(headers, Headers):
            self._items = list(headers._items)
        else:
            pairs = headers.items() if isinstance(headers, Mapping) else headers
            self._items = [(_text(name), _text(value)) for name, value in pairs]

    @classmethod
    def _from_list(cls, items: list[tuple[str, str]]) -> "Headers":
        """Wrap a list of str pairs without copying (used for parsed responses)."""
        headers = cls.__new__(cls)
        headers._items = items
        return headers

    def __getitem__(self, name: str) -> str:
        lowered = name.lower()
        for field, value in self._items:
            if field.lower() == lowered:
                return value
        raise KeyError(name)

    def __setitem__(self, name: str, value: str) -> None:
        name, value = _text(name), _text(value)
        lowered = name.lower()
        items = self._items
        for index, (field, _) in enumerate(items):
            if field.lower() == lowered:
                items[index] = (name, value)
                self._items = items[: index + 1] + [
                    pair for pair in items[index + 1 :] if pair[0].lower() != lowered
                ]
                return
        items.append((name, value))

    def __delitem__(self, name: str) -> None:
        lowered = name.lower()
        kept = [pair for pair in self._items if pair[0].lower() != lowered]
        if len(kept) == len(self._items):
            raise KeyError(name)
        self._items = kept

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        lowered = name.lower()
        return any(field.lower() == lowered for field, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[str]:
        return (field for field, _ in self._items)

    def __eq__(self, other: object) -> bool:
        # Like Go's Header map: the order of different names does not matter,
        # the order of one name's values does.
        if not isinstance(other, Headers):
            return NotImplemented
        return self._grouped() == other._grouped()

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def _grouped(self) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = {}
        for field, value in self._items:
            grouped.setdefault(field.lower(), []).append(value)
        return grouped

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: _T) -> str | _T: ...
    def get(self, name: str, default: _T | None = None) -> str | _T | None:
        """The first value of ``name``, or ``default``."""
        lowered = name.lower()
        for field, value in self._items:
            if field.lower() == lowered:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name`` in order (an empty list if absent)."""
        lowered = name.lower()
        return [value for field, value in self._items if field.lower() == lowered]

    def add(self, name: str, value: str) -> None:
        """Append a field, keeping any existing values of ``name``."""
        self._items.append((_text(name), _text(value)))

    @overload
    def pop(self, name: str) -> str: ...
    @overload
    def pop(self, name: str, default: _T) -> str | _T: ...
    def pop(self, name: str, default: object = ...) -> object:
        """Remove every field named ``name``; return the first value (or ``default``)."""
        value = self.get(name, _MISSING)
        if value is _MISSING:
            if default is ...:
                raise KeyError(name)
            return default
        del self[name]
        return value

    def keys(self) -> list[str]:
        """Field names, one per field."""
        return [field for field, _ in self._items]

    def values(self) -> list[str]:
        """Field values, one per field."""
        return [value for _, value in self._items]

    def items(self) -> list[tuple[str, str]]:
        """``(name, value)`` pairs, one per field, in order."""
        return list(self._items)

    def update(self, other: HeadersLike) -> None:
        """Replace the values of every name in ``other`` with its values there."""
        incoming = Headers(other)
        for name in dict.fromkeys(field.lower() for field, _ in incoming._items):
            if name in self:
                del self[name]
        self._items.extend(incoming._items)

    def copy(self) -> "Headers":
        """An independent copy."""
        return Headers._from_list(list(self._items))


_MISSING = object()


def response_facts(http_version: str, fields: list[tuple[str, str]]) -> tuple[bool, bool, bool]:
    """``(keeps_alive, gzipped, has_length)`` of a response head, in one pass over its fields
    (Go's ``shouldClose``, its gzip check, and whether a Content-Length field is there). The
    compiled parser works these out while it parses (``head_facts()``); this is the rule.

    RFC 9112 §9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with "keep-alive".
    """
    close = keep_alive = has_length = False
    encoding = None
    for field, value in fields:
        size = len(field)  # cheaper than lowering every name
        if size == 10 and field.lower() == "connection":
            tokens = [token.strip().lower() for token in value.split(",")]
            close = close or "close" in tokens
            keep_alive = keep_alive or "keep-alive" in tokens
        elif size == 16 and encoding is None and field.lower() == "content-encoding":
            encoding = value.strip().lower()  # Go: EqualFold(Header.Get(...), "gzip")
        elif size == 14 and field.lower() == "content-length":
            has_length = True
    return not close and (http_version == "HTTP/1.1" or keep_alive), encoding == "gzip", has_length
