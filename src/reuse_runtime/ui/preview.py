"""A short text of a pickled value, without running any of the pickle's code.

Outputs are kept as the pickles tasks made. Unpickling one in the controller
would run whatever it names, so :func:`preview` unpickles only plain data
(numbers, strings, bytes, and lists, tuples, dicts and sets of them, plus a few
standard value types); for anything else it names the class the pickle would
build (read from its opcodes, not imported): ``<pandas.DataFrame, 48213 bytes>``.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import reprlib

#: Pickles larger than this are only named.
MAX_BYTES = 64 * 1024
#: The longest preview, in characters.
MAX_CHARS = 200

#: The classes a preview may build: plain values, nothing that calls code.
_ALLOWED = frozenset(
    {
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "complex"),
        ("builtins", "bytearray"),
        ("builtins", "range"),
        ("builtins", "slice"),
        ("collections", "OrderedDict"),
        ("datetime", "datetime"),
        ("datetime", "date"),
        ("datetime", "time"),
        ("datetime", "timedelta"),
        ("datetime", "timezone"),
        ("decimal", "Decimal"),
        ("uuid", "UUID"),
    }
)

_repr = reprlib.Repr()
_repr.maxstring = MAX_CHARS
_repr.maxother = MAX_CHARS
_repr.maxlevel = 3
_repr.maxlist = _repr.maxtuple = _repr.maxset = _repr.maxfrozenset = _repr.maxdict = 12


class _Refused(Exception):
    """The pickle names something a preview does not build."""


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise _Refused(f"{module}.{name}")


def preview(data: bytes | None) -> str:
    """The value ``data`` holds, in at most :data:`MAX_CHARS` characters ("" for none)."""
    if not data:
        return ""
    if len(data) > MAX_BYTES:
        return _named(data)
    try:
        value = _PlainUnpickler(io.BytesIO(data)).load()
    except _Refused:
        return _named(data)
    except Exception:
        return f"<{len(data)} bytes that do not unpickle>"
    text = _repr.repr(value)
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 3] + "..."


def _named(data: bytes) -> str:
    """``<module.Class, N bytes>``: the first class the pickle names, read from its opcodes."""
    name = ""
    strings: list[str] = []
    try:
        for opcode, arg, _ in pickletools.genops(data):
            if opcode.name in ("GLOBAL", "INST") and isinstance(arg, str):
                name = arg.replace(" ", ".")
                break
            if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE") and isinstance(
                arg, str
            ):
                strings.append(arg)
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                name = f"{strings[-2]}.{strings[-1]}"
                break
    except Exception:
        pass
    if name.startswith("cloudpickle.") or not name:
        return f"<{len(data)} bytes>"
    return f"<{name[:MAX_CHARS]}, {len(data)} bytes>"
