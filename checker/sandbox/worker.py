"""The child side of the sandbox: loads one submission and serves calls on it.

Run as `python -s -B -u -m mmcheck.checker.sandbox.worker REQ_FD RESP_FD` by
`client.Submission` (never by hand). The first request is OP_HELLO with the
configuration; the worker lowers its resource limits, loads the submission with
the loader named there, answers R_READY (or R_LOAD_ERROR) and then serves
requests until the parent closes the channel. See protocol.py for the frames.

Everything here runs in the same process as untrusted code, so nothing here is
trusted by the parent: this module only has to be fast and to keep serving when
the submission misbehaves within Python (raises, returns odd objects, prints).
A submission that breaks the process itself (os._exit, a segfault, closing the
channel) is detected by the parent.

Loaders (the seam for C submissions): `LOADERS[name](path, module_name)` returns
the classes `new` may instantiate, by name. The Python loader imports the file
or package; a C loader would build ctypes-backed classes with the same method
names, and nothing else in the protocol or the parent would change.
"""

from __future__ import annotations

import builtins
import faulthandler
import gc
import importlib.util
import marshal
import os
import resource
import sys
import traceback
from collections.abc import Callable
from types import ModuleType, TracebackType
from typing import Any, NoReturn

from mmcheck.checker.sandbox import confine, faults
from mmcheck.checker.sandbox.protocol import (
    EXIT_CHANNEL_LOST,
    EXIT_INTERNAL,
    HEADER,
    MARSHAL_VERSION,
    OP_BATCH,
    OP_CALL,
    OP_CB_RAISE,
    OP_CB_RETURN,
    OP_DROP,
    OP_HELLO,
    OP_NEW,
    OP_RESET,
    PLAIN_DESCRIPTION,
    R_CALLBACK,
    R_EXIT,
    R_LOAD_ERROR,
    R_RAISE,
    R_READY,
    R_RETURN,
    R_USAGE,
    R_VIOLATION,
    SCALARS,
    plain_problem,
)

MAX_MESSAGE = 2000
# The contract's class names, as the parent's registry lists them (sent in OP_HELLO):
# a loader keeps these even when the submission imported them from a helper module.
CONTRACT_CLASSES: tuple[str, ...] = ()


class ChannelLost(Exception):
    """The request or reply pipe is gone (closed by the submission, or the parent left)."""


class Channel:
    """Blocking frame I/O on the two inherited pipe ends."""

    def __init__(self, rfd: int, wfd: int) -> None:
        self.rfd = rfd
        self.wfd = wfd
        self.buf = bytearray()
        self.forked = False

    def forget(self) -> None:
        """In a child of os.fork() (the submission forked): this copy of the worker
        must never read a request or send a reply, or the stream would carry two
        answers to one call and every later Outcome would be off by one."""
        self.forked = True
        for fd in (self.rfd, self.wfd):
            try:
                os.close(fd)
            except OSError:
                pass

    def recv(self) -> tuple:
        """The next request; exits quietly when the parent has closed the channel."""
        if self.forked:
            os._exit(0)
        buf = self.buf
        while True:
            if len(buf) >= 4:
                end = 4 + HEADER.unpack_from(buf)[0]
                if len(buf) >= end:
                    frame = marshal.loads(buf[4:end])
                    del buf[:end]
                    return frame
            try:
                chunk = os.read(self.rfd, 1 << 16)
            except OSError as e:
                raise ChannelLost(f"reading requests: {e}") from None
            if not chunk:
                os._exit(0)  # the parent is done with us
            buf += chunk

    def send_bytes(self, data: bytes) -> None:
        if self.forked:
            os._exit(0)
        try:
            n = os.write(self.wfd, data)
            while n < len(data):  # a big reply: the pipe takes it in pieces
                data = data[n:]
                n = os.write(self.wfd, data)
        except OSError as e:
            raise ChannelLost(f"writing replies: {e}") from None

    def send(self, frame: tuple) -> None:
        data = marshal.dumps(frame, MARSHAL_VERSION)
        self.send_bytes(HEADER.pack(len(data)) + data)


def _lost(channel_error: ChannelLost) -> NoReturn:
    """No way to report anything to the parent any more: leave a line on stderr."""
    try:
        os.write(2, f"mmcheck sandbox worker: channel lost ({channel_error})\n".encode())
    finally:
        os._exit(EXIT_CHANNEL_LOST)


def _make_proxy(worker: Worker, rid: int, name: str, methods: tuple[str, ...]) -> object:
    """An object whose methods call the parent-side object `rid` (e.g. `pages`)."""

    def forwarder(method: str) -> Callable[..., Any]:
        def call(self: object, *args: Any) -> Any:
            return worker.callback(rid, method, args)

        call.__name__ = call.__qualname__ = method
        return call

    namespace: dict[str, Any] = {m: forwarder(m) for m in methods}
    namespace["__repr__"] = lambda self: f"<{name}: the checker's object>"
    namespace["__slots__"] = ()
    return type(name, (), namespace)()


def _exception_frame(e: BaseException) -> tuple:
    """R_RAISE for `e`: class name, message, MRO names and the integer attributes
    the contract cares about (errno, code, address). Reading them may run the
    submission's code (properties), so each read is guarded."""
    try:
        message = str(e)[:MAX_MESSAGE]
    except BaseException:
        message = "<str() of the exception failed>"
    mro = tuple(c.__name__ for c in type(e).__mro__ if isinstance(c.__name__, str))
    attrs = []
    for attr in ("errno", "code", "address"):
        try:
            v = getattr(e, attr, None)
            ok = isinstance(v, int) and not isinstance(v, bool) and abs(int(v)) < 1 << 64
            attrs.append(int(v) if ok else None)
        except BaseException:
            attrs.append(None)
    tb = e.__traceback__
    where = ""
    if tb is not None:
        while tb.tb_next is not None:
            tb = tb.tb_next
        code = tb.tb_frame.f_code
        if code.co_filename != __file__:  # not raised by the call itself (wrong arity)
            where = f"{os.path.basename(code.co_filename)}:{tb.tb_lineno} in {code.co_name}"
    return (R_RAISE, type(e).__name__, message, mro, *attrs, where)


def _exit_frame(e: SystemExit) -> tuple:
    try:
        code = repr(e.code)[:200]
    except BaseException:
        code = "..."
    return (R_EXIT, f"the submission called sys.exit({code})")


class Worker:
    """The object table and the per-call path (kept lean: it runs thousands of
    times a second)."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.classes: dict[str, type] = {}
        self.objects: dict[int, object] = {}
        self.proxies: dict[int, object] = {}
        self.max_reply = 16 << 20

    # -- callbacks into the parent ---------------------------------------------

    def callback(self, rid: int, method: str, args: tuple) -> Any:
        """Round trip to the parent-side object `rid`; its exception is re-raised
        here (as the built-in class of that name, else RuntimeError)."""
        problem = plain_problem(args)
        if problem is not None:
            raise TypeError(f"{method}(): arguments must be plain data, got {problem}")
        try:
            self.channel.send((R_CALLBACK, rid, method, args))
            answer = self.channel.recv()
        except ChannelLost as e:  # the submission must not be able to swallow this
            _lost(e)
        if answer[0] == OP_CB_RETURN:
            return answer[1]
        if answer[0] == OP_CB_RAISE:
            cls = getattr(builtins, answer[1], None)
            if isinstance(cls, type) and issubclass(cls, Exception):
                raise cls(answer[2])
            raise RuntimeError(f"{answer[1]}: {answer[2]}")
        os.write(2, b"mmcheck sandbox worker: unexpected answer to a callback\n")
        os._exit(EXIT_INTERNAL)

    def resolve(self, args: tuple, kwargs: dict | None, refs: tuple) -> tuple[tuple, dict | None]:
        """Put proxies of parent-side objects where `refs` says."""
        args_l = list(args)
        kwargs = dict(kwargs or {})
        for position, rid, name, methods in refs:
            proxy = self.proxies.get(rid)
            if proxy is None:
                proxy = self.proxies[rid] = _make_proxy(self, rid, name, tuple(methods))
            if isinstance(position, int):
                args_l[position] = proxy
            else:
                kwargs[position] = proxy
        return tuple(args_l), kwargs or None

    # -- one request -----------------------------------------------------------

    def run_one(self, req: tuple) -> tuple:
        """The reply frame for one OP_NEW / OP_CALL."""
        op, hid, name, args, kwargs, refs = req
        if refs:
            args, kwargs = self.resolve(args, kwargs, refs)
        if op == OP_CALL:
            obj = self.objects.get(hid, self)
            if obj is self:
                return (R_USAGE, f"no object #{hid} (dropped, or made before a restart?)")
            try:
                fn = getattr(obj, name)
                value = fn(*args, **kwargs) if kwargs else fn(*args)
            except SystemExit as e:
                return _exit_frame(e)
            except BaseException as e:
                return _exception_frame(e)
            return self.returned(value)
        cls = self.classes.get(name)
        if cls is None:
            return (R_USAGE, f"the submission defines no class {name!r}")
        try:
            self.objects[hid] = cls(*args, **kwargs) if kwargs else cls(*args)
        except SystemExit as e:
            return _exit_frame(e)
        except BaseException as e:
            return _exception_frame(e)
        return (R_RETURN, None)

    def returned(self, value: object) -> tuple:
        if type(value) in SCALARS and (type(value) is not int or value.bit_length() <= 4096):
            return (R_RETURN, value)
        problem = plain_problem(value)
        if problem is not None:
            return (R_VIOLATION, f"returned {problem}, not plain data ({PLAIN_DESCRIPTION})")
        return (R_RETURN, value)

    def reply(self, frame: tuple) -> None:
        """Send a reply; a value too big to send becomes a violation."""
        data = marshal.dumps(frame, MARSHAL_VERSION)
        if len(data) > self.max_reply:
            data = marshal.dumps((R_VIOLATION, f"returned {len(data)} bytes, more than "
                                               f"the limit {self.max_reply}"), MARSHAL_VERSION)
        self.channel.send_bytes(HEADER.pack(len(data)) + data)

    # -- the loop --------------------------------------------------------------

    def serve(self) -> None:
        recv, send, reply, run_one = self.channel.recv, self.channel.send, self.reply, self.run_one
        while True:
            req = recv()
            op = req[0]
            if op == OP_CALL or op == OP_NEW:
                frame = run_one(req)
                reply(frame)
                if frame[0] == R_EXIT:
                    os._exit(1)
            elif op == OP_BATCH:
                for item in req[1]:
                    frame = run_one(item)
                    reply(frame)
                    if frame[0] == R_EXIT:
                        os._exit(1)
                    if frame[0] == R_USAGE:
                        break  # the parent raises on it and reads no further
            elif op == OP_DROP:
                self.objects.pop(req[1], None)
                send((R_RETURN, None))
            elif op == OP_RESET:
                self.objects.clear()
                self.proxies.clear()
                gc.collect()
                send((R_RETURN, None))
            else:
                send((R_USAGE, f"unknown request {op!r}"))


# -- loading -------------------------------------------------------------------


def load_python(path: str, module_name: str) -> dict[str, type]:
    """Import the file or package at `path` as `module_name`, with PageFault and
    Segfault in its globals before its first line runs; return its classes: the
    contract's names wherever they come from, and any class defined by the
    submission itself (not ones it merely imported)."""
    if os.path.isdir(path):
        spec = importlib.util.spec_from_file_location(
            module_name, os.path.join(path, "__init__.py"), submodule_search_locations=[path])
        home = os.path.dirname(os.path.abspath(path))
    else:
        spec = importlib.util.spec_from_file_location(module_name, path)
        home = os.path.dirname(os.path.abspath(path))
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    for name, cls in faults.INJECTED.items():
        setattr(module, name, cls)
    sys.modules[module_name] = module  # for dataclasses, pickling, relative imports
    sys.path.append(home)  # sibling helper modules of a one-file submission
    spec.loader.exec_module(module)
    return _classes_of(module, module_name)


def _classes_of(module: ModuleType, module_name: str) -> dict[str, type]:
    found = {}
    for name, value in list(vars(module).items()):
        if not isinstance(value, type):
            continue
        owner = getattr(value, "__module__", "")
        if name in CONTRACT_CLASSES or (
                isinstance(owner, str) and owner.split(".")[0] == module_name):
            found[name] = value
    return found


def load_c(path: str, module_name: str) -> dict[str, type]:
    """A C submission's shared library, through ctypes (checker/sandbox/cworker.py,
    imported by hello() before confinement)."""
    return sys.modules["mmcheck.checker.sandbox.cworker"].load_c(path, module_name)


LOADERS: dict[str, Callable[[str, str], dict[str, type]]] = {"python": load_python,
                                                              "c": load_c}


def _public_methods(cls: type) -> list[str]:
    names = []
    for name in dir(cls):
        if name.startswith("_"):
            continue
        try:
            if callable(getattr(cls, name)):
                names.append(name)
        except Exception:
            continue
    return sorted(names)


def _trim(tb: TracebackType | None, root: str) -> TracebackType | None:
    """Drop the worker's and importlib's frames from the top of a traceback."""
    while tb is not None and not tb.tb_frame.f_code.co_filename.startswith(root):
        tb = tb.tb_next
    return tb


def _load_error(e: BaseException, path: str) -> tuple:
    """R_LOAD_ERROR for an exception raised while loading `path`."""
    root = os.path.abspath(path)
    if isinstance(e, SyntaxError):
        text = "".join(traceback.format_exception_only(type(e), e))
        return (R_LOAD_ERROR, "syntax", f"{type(e).__name__}: {e.msg}", e.filename, e.lineno,
                text)
    tb = _trim(e.__traceback__, root) or e.__traceback__
    text = "".join(traceback.format_exception(type(e), e, tb))
    filename = lineno = None
    if tb is not None:
        last = tb
        while last.tb_next is not None:
            last = last.tb_next
        filename, lineno = last.tb_frame.f_code.co_filename, last.tb_lineno
    kind = "exit" if isinstance(e, SystemExit) else "exception"
    try:
        message = f"{type(e).__name__}: {e}"[:MAX_MESSAGE]
    except BaseException:
        message = type(e).__name__
    return (R_LOAD_ERROR, kind, message, filename, lineno, text)


def apply_limits(limits: dict[str, int | None]) -> None:
    """Lower soft AND hard limits, so the submission cannot raise them again.
    Done here rather than in a preexec_fn (unsafe when the checker has threads,
    and slower to spawn): no submission code runs before this. RLIMIT_CPU gets
    one second more hard than soft so that SIGXCPU, which names the cause,
    arrives before the SIGKILL of the hard limit."""
    names = {
        "as": resource.RLIMIT_AS, "cpu": resource.RLIMIT_CPU,
        "nofile": resource.RLIMIT_NOFILE, "fsize": resource.RLIMIT_FSIZE,
        "core": resource.RLIMIT_CORE, "nproc": resource.RLIMIT_NPROC,
    }
    for key, value in limits.items():
        if value is None:
            continue
        which = names[key]
        _, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        hard_value = value + 1 if key == "cpu" else value
        if hard != resource.RLIM_INFINITY:
            hard_value = min(hard_value, hard)
        resource.setrlimit(which, (value, hard_value))


def hello(worker: Worker, config: dict) -> None:
    """Confinement, limits, then load, then R_READY or R_LOAD_ERROR (and exit)."""
    global CONTRACT_CLASSES
    plan = config.get("confine")
    if config["loader"] == "c":  # the private root has no mmcheck: import it now
        importlib.import_module("mmcheck.checker.sandbox.cworker")
    try:
        layers = confine.enter(plan, (worker.channel.rfd, worker.channel.wfd))
    except (confine.Unavailable, OSError) as e:  # never run the submission half-confined
        worker.channel.send((R_LOAD_ERROR, "sandbox", f"cannot confine the submission: {e}",
                             None, None, ""))
        os._exit(0)
    # after confine's own fork: from here on, a fork is the submission's
    os.register_at_fork(after_in_child=worker.channel.forget)
    limits = dict(config["limits"])
    if not ("pid-ns" in layers or "user nobody" in layers):
        limits["nproc"] = None  # it would count every process of the checker's user
    apply_limits(limits)
    layers.append("rlimits")
    worker.max_reply = config["max_reply"]
    CONTRACT_CLASSES = tuple(config["contract_classes"])
    path = config["path"]
    if plan:
        path = plan.get("placed", {}).get(path) or plan["staged"]
    try:
        worker.classes = LOADERS[config["loader"]](path, config["module"])
    except BaseException as e:
        worker.channel.send(_load_error(e, path))
        os._exit(0)
    info = {name: _public_methods(cls) for name, cls in worker.classes.items()}
    worker.channel.send((R_READY, info, layers))


def main(argv: list[str]) -> None:
    faulthandler.enable()  # a segfault leaves the Python stack on stderr for the report
    rfd, wfd = int(argv[1]), int(argv[2])
    for fd in (rfd, wfd):  # the submission's own child processes must not inherit them
        os.set_inheritable(fd, False)
    # `-m` put the working directory first on sys.path; the submission may write
    # files there, which must not shadow modules the worker imports later.
    sys.path[:] = [p for p in sys.path if p not in ("", os.getcwd())]
    worker = Worker(Channel(rfd, wfd))
    try:
        req = worker.channel.recv()
        if req[0] != OP_HELLO:
            raise RuntimeError(f"expected OP_HELLO, got {req[0]!r}")
        hello(worker, req[1])
        worker.serve()
    except ChannelLost as e:
        _lost(e)
    except BaseException:
        traceback.print_exc()
        os._exit(EXIT_INTERNAL)


if __name__ == "__main__":
    main(sys.argv)
