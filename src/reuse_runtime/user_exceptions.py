"""A task's own exception, as its caller receives it.

A task's exception travels pickled (see :mod:`reuse_runtime.pickling`) and is
raised in the caller as itself: rebuilt from its ``args`` and attributes
without its ``__init__`` (:func:`rebuild_exception`), and made a Flyte
``RuntimeUserError`` too (:func:`as_user_error`). When its class cannot be
loaded there, a :class:`~reuse_runtime.errors.TaskRaisedError` stands in for it,
an instance of its nearest base class that can be (:func:`stand_in`).
"""

from __future__ import annotations

import contextlib
import types
from typing import Any

from reuse_runtime import errors

#: The attribute types of a builtin exception's own fields (``OSError.errno``,
#: ``UnicodeError.start``, ...) that are copied when an exception is rebuilt.
_FIELD_TYPES = (bool, int, float, str, bytes)


def _builtin_init(cls: type) -> Any:
    """``cls``'s nearest ``__init__`` written in C (a builtin's)."""
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None and not isinstance(init, types.FunctionType):
            return init
    return BaseException.__init__


def builtin_fields(error: BaseException) -> tuple[tuple[str, Any], ...]:
    """The fields ``error``'s builtin bases keep outside ``args`` and ``__dict__``.

    ``OSError``'s ``errno`` and ``filename``, ``UnicodeError``'s ``start``, and so on:
    pickling by ``args`` alone loses them when a subclass's ``__init__`` passes its
    base other arguments than its own.
    """
    fields = []
    for klass in type(error).__mro__:
        if klass.__module__ != "builtins" or klass in (BaseException, object):
            continue
        for name, member in vars(klass).items():
            if name.startswith("_") or not isinstance(
                member, (types.MemberDescriptorType, types.GetSetDescriptorType)
            ):
                continue
            try:
                value = getattr(error, name)
            except Exception:
                continue
            if type(value) in _FIELD_TYPES:  # not None: a field left unset reads as None
                fields.append((name, value))
    return tuple(fields)


def rebuild_exception(
    cls: type[BaseException], args: tuple[Any, ...], fields: tuple[tuple[str, Any], ...] = ()
) -> BaseException:
    """A ``cls`` with ``args`` and ``fields``, made without running its Python ``__init__``.

    An exception's ``args`` are what its ``__init__`` passed to ``Exception``, not
    what it takes (``InsufficientFunds(account, missing)`` keeps one message), so
    ``cls(*args)``, which is how plain pickling rebuilds it, can fail or mislead. The
    builtin base's own ``__init__`` still runs, for the state it keeps in C.
    """
    error = errors.new_exception(cls, args)
    with contextlib.suppress(Exception):
        _builtin_init(cls)(error, *args)
    error.args = args
    for name, value in fields:
        with contextlib.suppress(Exception):
            setattr(error, name, value)
    return error


_GRAFT_ATTRIBUTES = ("code", "kind", "worker")
#: The key, in a grafted error's ``__dict__``, of the Flyte attributes grafting added
#: (the ones the task's exception did not have itself: its own ``code`` stays its own).
_GRAFTED = "_reuse_runtime_grafted"
_grafted: dict[type[BaseException], type[BaseException]] = {}
_grafts: set[type[BaseException]] = set()


def original_class(cls: type[BaseException]) -> type[BaseException]:
    """The task's own exception class, for a class :func:`as_user_error` made."""
    return cls.__bases__[0] if cls in _grafts else cls


def exception_state(error: BaseException) -> dict[str, Any]:
    """``error``'s ``__dict__`` as its own class has it (without what grafting added)."""
    state = dict(error.__dict__)
    for name in state.pop(_GRAFTED, ()):
        state.pop(name, None)
    return state


def _rebuild_with_state(
    cls: type[BaseException],
    args: tuple[Any, ...],
    fields: tuple[tuple[str, Any], ...],
    state: dict[str, Any],
) -> BaseException:
    error = rebuild_exception(cls, args, fields)
    error.__dict__.update(state)
    return error


def _reduce_grafted(self: BaseException) -> tuple[Any, ...]:
    # On the wire a grafted error is its original class again; the next caller grafts anew.
    return (
        _rebuild_with_state,
        (original_class(type(self)), self.args, builtin_fields(self), exception_state(self)),
    )


def _graft(cls: type[BaseException]) -> type[BaseException]:
    grafted = _grafted.get(cls)
    if grafted is None:
        grafted = type(
            cls.__name__,
            (cls, errors.RuntimeUserError),
            {
                "__module__": cls.__module__,
                "__qualname__": cls.__qualname__,
                "__doc__": cls.__doc__,
                "__str__": cls.__str__,
                "__reduce__": _reduce_grafted,
            },
        )
        _grafted[cls] = grafted
        _grafts.add(grafted)
    return grafted


def as_user_error(error: BaseException, *, worker: str | None = None) -> BaseException:
    """``error`` (a task's own exception) as itself *and* a Flyte ``RuntimeUserError``.

    The result is an instance of a subclass of both ``type(error)`` and
    :class:`~reuse_runtime.errors.RuntimeUserError`, with the same name, arguments
    and attributes, and ``code`` set to the class name, as Flyte reports a task's
    exception (unless the exception has a ``code``, ``kind`` or ``worker`` of its own,
    which it keeps). An error that already is a
    :class:`~reuse_runtime.errors.BaseRuntimeError`, is not an :class:`Exception`
    (``SystemExit``, ...), or cannot be re-created, is returned unchanged.
    """
    cls = type(error)
    if isinstance(error, errors.BaseRuntimeError) or not isinstance(error, Exception):
        return error
    try:
        # A copy of ``error`` made without running a Python __init__ again: its
        # super() calls would reach RuntimeUserError's.
        grafted = rebuild_exception(_graft(cls), error.args, builtin_fields(error))
    except Exception:
        return error
    grafted.__dict__.update(error.__dict__)
    grafted.__cause__ = error.__cause__
    grafted.__traceback__ = error.__traceback__
    # Flyte's attributes fill in only what the task's exception lacks: a user's own
    # ``code`` (an HTTP status, an errno) or ``kind`` is what their handler reads.
    flyte = {"code": cls.__name__, "kind": "user", "worker": worker}
    added = tuple(
        name for name in _GRAFT_ATTRIBUTES if name not in error.__dict__ and not hasattr(cls, name)
    )
    for name in added:
        setattr(grafted, name, flyte[name])
    grafted.__dict__[_GRAFTED] = added
    return grafted


# ---------------------------------------------------------------- a class the caller lacks

_stand_ins: dict[type[BaseException], type[errors.TaskRaisedError]] = {}


def _stand_in_class(base: type[BaseException]) -> type[errors.TaskRaisedError]:
    """``TaskRaisedError`` that is a ``base`` too (``base`` must combine with it)."""
    if issubclass(errors.TaskRaisedError, base):
        return errors.TaskRaisedError
    cls = _stand_ins.get(base)
    if cls is None:
        cls = type(
            "TaskRaisedError",
            (errors.TaskRaisedError, base),
            {
                "__module__": errors.__name__,
                "__qualname__": "TaskRaisedError",
                "__doc__": errors.TaskRaisedError.__doc__,
                "__reduce__": _reduce_stand_in,
                "stands_in_for": base,
            },
        )
        _stand_ins[base] = cls
    return cls


def _reduce_stand_in(self: errors.TaskRaisedError) -> tuple[Any, ...]:
    return (_restore_stand_in, (type(self).__bases__[1], self.args, dict(self.__dict__)))


def _restore_stand_in(
    base: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]
) -> errors.TaskRaisedError:
    return _rebuild_with_state(_stand_in_class(base), args, (), state)  # type: ignore[return-value]


def stand_in(
    bases: list[type[BaseException]], type_name: str, message: str
) -> errors.TaskRaisedError:
    """A :class:`~reuse_runtime.errors.TaskRaisedError` for an exception whose class
    cannot be loaded here.

    It is an instance of the first of ``bases`` (the class's own bases, nearest
    first, as far as they load) that it can be combined with, so ``except
    LookupError`` still catches a ``KeyError`` subclass this process lacks.
    ``type_name`` is the class's name, as its ``code``.
    """
    for base in bases:
        if not issubclass(base, Exception):
            continue
        try:
            return _stand_in_class(base)(message, type_name=type_name)
        except TypeError:  # a base that cannot be combined (its C layout), or refuses
            continue
    return errors.TaskRaisedError(message, type_name=type_name)
