"""The wire format between the checker (parent) and a sandbox worker (child).

Both sides import this module; it holds no state. A frame is a 4-byte
little-endian length followed by one `marshal` dump (version 4) of a tuple whose
first item is an integer tag. Why marshal:

- it keeps the types the contract returns (tuples stay tuples, ints stay
  arbitrary-precision), so `vmas()` compares equal to the model's list of tuples
  without any conversion layer;
- it is the fastest codec in the standard library for small values (a
  `(tag, int)` frame dumps and loads in well under a microsecond);
- unlike pickle, loading never runs code: it only builds objects of a few
  built-in types. The parent still treats a loaded frame as untrusted and checks
  it with `plain_problem` before using it (marshal can also build bytes, sets and
  code objects, and its docs do not promise hardening against crafted input).

Requests (parent to worker), where `refs` is None or a tuple of
`(position, remote_id, name, methods)` that tells the worker which arguments to
replace by a proxy of a parent-side object (`position` is an index into `args`
or a keyword name):

    (OP_HELLO, config)                                   load the submission
    (OP_NEW, hid, class_name, args, kwargs, refs)        objects[hid] = cls(...)
    (OP_CALL, hid, method, args, kwargs, refs)           objects[hid].method(...)
    (OP_BATCH, [OP_NEW/OP_CALL request, ...])            one reply per item
    (OP_DROP, hid) / (OP_RESET,)                         forget one / all objects
    (OP_CB_RETURN, value) / (OP_CB_RAISE, type, message) answer to R_CALLBACK

Replies (worker to parent):

    (R_READY, {class_name: [method, ...]})
    (R_LOAD_ERROR, kind, message, filename, lineno, traceback_text)
    (R_RETURN, value)
    (R_RAISE, type, message, mro, errno, code, address, where)
    (R_VIOLATION, detail)          the call returned something that is not plain data
    (R_EXIT, detail)               the submission called sys.exit(); the worker exits
    (R_USAGE, detail)              the checker asked for something that does not exist
    (R_CALLBACK, remote_id, method, args)   the submission called a parent-side object
"""

from __future__ import annotations

import marshal
import re
import struct

MARSHAL_VERSION = 4
HEADER = struct.Struct("<I")

OP_HELLO = 1
OP_NEW = 2
OP_CALL = 3
OP_BATCH = 4
OP_DROP = 5
OP_RESET = 6
OP_CB_RETURN = 7
OP_CB_RAISE = 8

R_READY = 101
R_LOAD_ERROR = 102
R_RETURN = 103
R_RAISE = 104
R_VIOLATION = 105
R_EXIT = 106
R_USAGE = 107
R_CALLBACK = 108

# Exit statuses the worker itself uses when it can no longer serve (a submission
# could exit with these too; the message then says what they usually mean).
EXIT_CHANNEL_LOST = 71
EXIT_INTERNAL = 70

SCALARS: frozenset[type] = frozenset({type(None), bool, int, float, str})
PLAIN_DESCRIPTION = "None, bool, int, float, str, and lists, tuples and dicts of those"
MAX_DEPTH = 64
MAX_INT_BITS = 4096  # no value of the contract is near; str() of a bigger one may raise
_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: str, limit: int = 2000) -> str:
    """Text from a submission, fit for a report: terminal escapes and control
    characters removed (newlines and tabs kept), at most `limit` characters
    (0: no bound) with a note of how many were cut."""
    if type(text) is not str:
        text = "<not text>"
    if limit and len(text) > 4 * limit:  # never scan megabytes for a few lines
        text = text[:4 * limit]
    text = _CONTROL.sub("", text)
    if limit and len(text) > limit:
        return text[:limit] + f" ... [{len(text) - limit:,}+ characters cut]"
    return text


def huge_int(value: object) -> str | None:
    """What is wrong with an int too big for any contract value, else None."""
    if type(value) is int and value.bit_length() > MAX_INT_BITS:
        return f"an integer of {value.bit_length():,} bits (more than {MAX_INT_BITS})"
    return None


def encode(frame: tuple) -> bytes:
    """One frame ready to write. Raises ValueError for a value marshal cannot dump."""
    data = marshal.dumps(frame, MARSHAL_VERSION)
    return HEADER.pack(len(data)) + data


def node_budget(nbytes: int) -> int:
    """How many containers a reply of `nbytes` may hold. Marshal shares repeated
    objects, so a small crafted frame could describe a huge DAG; the budget keeps
    the parent's walk over it proportional to what it received."""
    return max(1 << 16, 16 * nbytes)


def type_name(value: object) -> str:
    """`module.Qualname` of value's type, robust against odd metaclasses."""
    t = type(value)
    try:
        module = t.__module__
        qualname = t.__qualname__
    except Exception:
        return "<unnamed type>"
    if not isinstance(module, str) or not isinstance(qualname, str):
        return "<unnamed type>"
    return qualname if module == "builtins" else f"{module}.{qualname}"


def plain_problem(value: object, max_nodes: int = 1 << 22) -> str | None:
    """None when `value` is plain data (exact types only: an int subclass such as
    an IntEnum is not plain); otherwise what is wrong, for a report. A cyclic or
    absurdly deep value yields a message, not RecursionError: the recursion stops
    at MAX_DEPTH. This runs on every non-scalar reply on both sides, so the scan
    of a container's scalars is done in C (`issuperset(map(type, ...))`)."""
    if type(value) in SCALARS:
        return huge_int(value)
    return _problem(value, 0, [max_nodes])


def _problem(v: object, depth: int, budget: list[int]) -> str | None:
    t = type(v)
    if t is list or t is tuple:
        items = v
    elif t is dict:
        if not SCALARS.issuperset(map(type, v)):  # type: ignore[call-overload]
            key = next(k for k in v if type(k) not in SCALARS)  # type: ignore[attr-defined]
            return f"a dict key of type {type_name(key)}"
        items = v.values()  # type: ignore[attr-defined]
    else:
        return f"an object of type {type_name(v)}" + (" inside the value" if depth else "")
    budget[0] -= 1
    if budget[0] < 0:
        return "too many nested lists/tuples/dicts"
    if depth >= MAX_DEPTH:
        return f"nested deeper than {MAX_DEPTH} levels (a cycle?)"
    if SCALARS.issuperset(map(type, items)):  # type: ignore[call-overload]
        return next(filter(None, map(huge_int, items)), None)  # type: ignore[call-overload]
    for x in items:  # type: ignore[attr-defined]
        if type(x) is int and huge_int(x):
            return huge_int(x)
        if type(x) not in SCALARS:
            problem = _problem(x, depth + 1, budget)
            if problem is not None:
                return problem
    return None
