"""A warm prediction server: a model loaded once answers questions over HTTP (JSON), so that
single ``kgfuse predict`` calls skip the seconds of importing torch and loading the model.

::

    kgfuse serve --model runs/csqa/model                     # loads, then prints http://127.0.0.1:8765
    kgfuse predict --server http://127.0.0.1:8765 --question "..." --choices a b c

Endpoints (JSON in and out, UTF-8):

``POST /predict``
    ``{"question": str, "choices": [str, ...], "id": any, "top_k": int}`` (``id`` and
    ``top_k`` optional) answers one question with one record: exactly the line that
    ``kgfuse predict --questions`` writes for it (``id``, ``question``, ``choices``,
    ``scores``, ``probs``, ``predicted``, ``choice``, ``explanation``, ``concepts``,
    ``knowledge``, ``knowledge_per_choice``). ``{"questions": [{...}, ...], "top_k": int}``
    answers several: ``{"predictions": [record, ...]}`` in the same order.
``GET /health``
    ``{"ready": bool, "model": folder, "graph_hash": str or null, "uses_graph": bool,
    "threads": int, "answered": int, "load_seconds": float, "kgfuse": version}``;
    ``ready`` is false while the model is still loading.

Errors answer ``{"error": message}``: 400 for a body that is not JSON or a question that is
not ``{"question": non-empty string, "choices": [two or more non-empty strings]}`` (the
message names the field, and for ``questions`` the index), 404 for an unknown path, 405 for
the wrong method, 411 without ``Content-Length``, 413 for a body over 16 MiB, 503 while the
model is loading, 500 when answering fails (logged with its traceback).

Requests are served each on its own thread; the model answers one request at a time (a
lock), with the torch thread count the server was started with.

In Python, :func:`kgfuse.tasks.api.make_server` starts one in-process (port 0: any free
port)::

    with api.make_server("runs/csqa/model", port=0) as server:
        server.start()                                  # answers on a background thread
        RemotePredictor(server.url).predict("Where would you put a plate?", ["cupboard", "roof"])

The client side (:class:`RemotePredictor`) uses only the standard library: a process that
asks a running server imports neither torch, transformers, spaCy nor kgfuse's model code.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import urlsplit

__all__ = ["PredictionServer", "RemotePredictor", "RemotePrediction", "ServerError", "ServerUnavailableError",
           "ServerRequestError", "AddressError", "serve_until_stopped", "DEFAULT_HOST", "DEFAULT_PORT"]

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
MAX_BODY = 16 * 1024 * 1024
CLIENT_TIMEOUT = 300.0  # seconds a client waits for one answer (a long list of questions takes a while)


# --------------------------------------------------------------------------------------
# server


class RequestError(Exception):
    """A request the server refuses: answered with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str, *, allow: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.allow = allow


def parse_predict_request(body: Any, default_top_k: int) -> tuple[list[dict[str, Any]], int, bool]:
    """``(questions, top_k, several)`` of a ``POST /predict`` body, every question checked
    before any is answered.

    Raises:
        RequestError: (400) the body is not such an object; the message names the field.
    """
    from .api import _question_record

    if not isinstance(body, Mapping):
        raise RequestError(400, 'the request body must be a JSON object: {"question": ..., "choices": [...]} '
                                'or {"questions": [{"question": ..., "choices": [...]}, ...]}')
    top_k = body.get("top_k", default_top_k)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise RequestError(400, f"'top_k' must be a non-negative integer, not {json.dumps(top_k)}")
    if "questions" in body:
        if "question" in body or "choices" in body:
            raise RequestError(400, "give 'question' and 'choices' (one question) or 'questions' (several), not both")
        items = body["questions"]
        if not isinstance(items, list) or not items:
            raise RequestError(400, "'questions' must be a non-empty list of objects with 'question' and 'choices'")
        try:
            for k, rec in enumerate(items):
                _question_record(rec, f"questions[{k}]")
        except ValueError as e:
            raise RequestError(400, str(e)) from None
        return list(items), top_k, True
    try:
        qid, question, choices = _question_record(body, "request")
    except ValueError as e:
        raise RequestError(400, str(e)) from None
    return [{"id": qid, "question": question, "choices": choices}], top_k, False


class _Handler(BaseHTTPRequestHandler):
    server: "PredictionServer"
    server_version = "kgfuse-serve"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._route("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._route("POST")

    def _other_method(self) -> None:
        self._route(self.command)

    do_PUT = do_DELETE = do_PATCH = _other_method  # answered 405 with the method to use

    def _route(self, method: str) -> None:
        t = time.perf_counter()
        path = urlsplit(self.path).path.rstrip("/") or "/"
        routes = {"/predict": ("POST", self._predict), "/health": ("GET", self._health)}
        detail = ""
        try:
            if path not in routes:
                raise RequestError(404, f"no such path: {path} (POST /predict, GET /health)")
            want, handle = routes[path]
            if method != want:
                raise RequestError(405, f"use {want} for {path}", allow=want)
            status, payload, detail = handle()
        except RequestError as e:
            status, payload, detail = e.status, {"error": str(e)}, str(e)
            self._send(status, payload, allow=e.allow)
        except Exception as e:  # the model failed: the server stays up
            logger.exception("%s %s failed", method, path)
            status, payload, detail = 500, {"error": f"{type(e).__name__}: {e}"}, "failed"
            self._send(status, payload)
        else:
            self._send(status, payload)
        ms = 1000 * (time.perf_counter() - t)
        level = logging.DEBUG if path == "/health" and status == 200 else logging.INFO
        logger.log(level, "%s %s %s %d %s(%.0f ms)", self.client_address[0], method, path, status,
                   f"{detail} " if detail else "", ms)

    def _health(self) -> tuple[int, dict[str, Any], str]:
        return 200, self.server.health(), ""

    def _predict(self) -> tuple[int, dict[str, Any], str]:
        body = self._read_json()
        records, several = self.server.answer(body)
        n = len(records)
        return 200, ({"predictions": records} if several else records[0]), f"{n} question{'s' * (n != 1)}"

    def _read_json(self) -> Any:
        length = self.headers.get("Content-Length")
        if length is None:
            raise RequestError(411, "send the JSON body with a Content-Length header")
        try:
            n = int(length)
        except ValueError:
            raise RequestError(400, f"Content-Length is not a number: {length!r}") from None
        if n > MAX_BODY:
            raise RequestError(413, f"the request body has {n} bytes, more than {MAX_BODY} (16 MiB): "
                                    "send the questions in several requests")
        raw = self.rfile.read(n)
        if not raw.strip():
            raise RequestError(400, 'the request body is empty: send {"question": ..., "choices": [...]}')
        try:
            return json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise RequestError(400, "the request body is not UTF-8 text") from None
        except json.JSONDecodeError as e:
            raise RequestError(400, f"the request body is not valid JSON: {e}") from None

    def _send(self, status: int, payload: Any, *, allow: str | None = None) -> None:
        data = (json.dumps(payload, ensure_ascii=False) + "\n").encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            if allow:
                self.send_header("Allow", allow)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            logger.debug("the client closed the connection before the answer was sent")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
        logger.debug("%s %s", self.client_address[0], format % args)


class PredictionServer(ThreadingHTTPServer):
    """An HTTP server around one predictor (see the module's documentation for the endpoints).

    Creating it binds ``host:port`` (``port=0``: any free port, see :attr:`url`);
    :meth:`load` loads the model; :meth:`start` answers on a background thread and
    :meth:`stop` (or leaving a ``with`` block) stops it. Before :meth:`load` has finished,
    ``GET /health`` says ``"ready": false`` and ``POST /predict`` answers 503.

    Args:
        model: a trained model folder, or a loaded predictor
            (:func:`kgfuse.tasks.api.load_predictor`).
        graph, threads: as :func:`kgfuse.tasks.api.load_predictor` (``threads`` sets torch's
            intra-op threads of the whole process).
        top_k: reasoning lines per explanation when a request does not give ``top_k``.

    Raises:
        AddressError: (an ``OSError``) the address cannot be bound (in use, or not an address
            of this machine).
    """

    daemon_threads = True

    def __init__(self, model: Any, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, graph: Any = None,
                 threads: int | None = None, top_k: int = 3) -> None:
        try:
            super().__init__((host, port), _Handler)
        except OSError as e:
            err = AddressError(f"cannot listen on {host}:{port}: {e.strerror or e} (is another server there? "
                               "choose another --port)")
            err.errno = e.errno
            raise err from None
        self.model_source = model
        self.graph_source = graph
        self.threads = threads
        self.top_k = top_k
        self.predictor: Any = None
        self.load_seconds = 0.0
        self.answered = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` of the bound socket (the real port when created with port 0)."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def ready(self) -> bool:
        return self.predictor is not None

    @property
    def model_name(self) -> str | None:
        from .api import _model_name

        return _model_name(self.model_source)

    def load(self, *, warm_up: bool = True) -> "PredictionServer":
        """Load the model (once); with ``warm_up`` answer one made-up question, so that the
        first request does not pay for what is built on first use."""
        if self.predictor is None:
            from .api import load_predictor

            t, cpu = time.perf_counter(), time.process_time()
            predictor = load_predictor(self.model_source, graph=self.graph_source, threads=self.threads,
                                       warm_up=warm_up)
            self.load_seconds = time.perf_counter() - t
            self.predictor = predictor
            logger.info("model loaded in %.1f s (%.1f s of CPU)", self.load_seconds, time.process_time() - cpu)
        return self

    def health(self) -> dict[str, Any]:
        """What ``GET /health`` answers."""
        pred = self.predictor
        graph = getattr(pred, "graph", None)
        threads = None
        if pred is not None:
            import torch  # already imported with the model

            threads = torch.get_num_threads()  # as this (request) thread will run torch
        import kgfuse

        return {"ready": pred is not None, "model": self.model_name,
                "graph_hash": None if graph is None else graph.hash,
                "uses_graph": bool(getattr(pred, "uses_graph", False)), "threads": threads,
                "answered": self.answered, "load_seconds": round(self.load_seconds, 3),
                "kgfuse": kgfuse.__version__}

    def answer(self, body: Any) -> tuple[list[dict[str, Any]], bool]:
        """``(records, several)`` for a ``POST /predict`` body (see
        :func:`parse_predict_request`): the records of :func:`kgfuse.tasks.api.predict`.

        Raises:
            RequestError: 400 for a bad body, 503 while the model is loading.
        """
        items, top_k, several = parse_predict_request(body, self.top_k)
        if self.predictor is None:
            raise RequestError(503, "the model is still loading: try again when GET /health says \"ready\": true")
        from .api import predict

        with self._lock:
            res = predict(self.predictor, questions=items, top_k=top_k)
            self.answered += len(res.records)
        return res.records, several

    def start(self) -> "PredictionServer":
        """Answer requests on a background (daemon) thread until :meth:`stop`."""
        if self._thread is None:
            self._thread = threading.Thread(target=self.serve_forever, name=f"kgfuse-serve:{self.server_address[1]}",
                                            daemon=True)
            self._thread.start()
        return self

    def wait(self) -> None:
        """Block until the server is stopped (Ctrl-C and signal handlers still run)."""
        if self._thread is not None:
            self._thread.join()

    def stop(self, *, grace: float = 10.0) -> None:
        """Stop answering, wait up to ``grace`` seconds for a question being answered, and
        close the socket."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        if self._lock.acquire(timeout=grace):
            self._lock.release()
        self.server_close()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class _Stop(Exception):
    """Raised by the SIGTERM handler of :func:`serve_until_stopped`."""


def serve_until_stopped(server: PredictionServer, *, on_ready: Callable[[PredictionServer], None] | None = None,
                        warm_up: bool = True) -> None:
    """Answer on ``server`` from now on (``"ready": false`` while the model loads), load the
    model, call ``on_ready(server)``, and block until Ctrl-C or SIGTERM (from the main
    thread; elsewhere until :meth:`PredictionServer.stop`); the server is stopped and closed
    on the way out, also when loading fails."""
    main = threading.current_thread() is threading.main_thread()
    previous = None
    if main:
        def on_term(signum: int, frame: Any) -> None:
            raise _Stop()

        previous = signal.signal(signal.SIGTERM, on_term)
    try:
        server.start()
        server.load(warm_up=warm_up)
        if on_ready is not None:
            on_ready(server)
        server.wait()
    except (KeyboardInterrupt, _Stop) as e:
        logger.info("%s: stopping the server", "SIGTERM" if isinstance(e, _Stop) else "interrupted")
    finally:
        server.stop()
        if main:
            signal.signal(signal.SIGTERM, previous)
    logger.info("server stopped (%d question%s answered)", server.answered, "s" * (server.answered != 1))


# --------------------------------------------------------------------------------------
# client (standard library only)


class ServerError(Exception):
    """A kgfuse server could not answer (its message is one line for the user)."""


class AddressError(ServerError, OSError):
    """A server cannot listen on the address it was given (in use, or not of this machine)."""


class ServerUnavailableError(ServerError):
    """No kgfuse server answers at the URL."""


class ServerRequestError(ServerError, ValueError):
    """The server refused the question (400): a ``ValueError``, as a local predictor's."""


class RemotePrediction(dict):
    """A prediction as the server sent it: the fields of
    :class:`~kgfuse.tasks.inference.Prediction` as keys and attributes, and :meth:`to_dict`."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def to_dict(self) -> dict[str, Any]:
        return dict(self)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RemotePredictor:
    """Asks a running ``kgfuse serve``: :meth:`predict` has the signature of
    :meth:`KGFusePredictor.predict <kgfuse.tasks.inference.KGFusePredictor.predict>`, so
    :func:`kgfuse.tasks.api.predict` and :func:`~kgfuse.tasks.api.predict_stream` take it as
    the model. Only the standard library is used.

    Args:
        url: the server, ``http://HOST:PORT`` (what ``kgfuse serve`` prints).
        timeout: seconds to wait for one answer.

    Raises:
        ValueError: ``url`` is not an http(s) URL.
    """

    def __init__(self, url: str, *, timeout: float = CLIENT_TIMEOUT) -> None:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the server URL must look like http://127.0.0.1:{DEFAULT_PORT}, not {url!r}")
        self.url = url.strip().rstrip("/")
        self.timeout = timeout
        import urllib.request

        # a proxy set for the user's web traffic must not take requests to this machine
        handlers = [urllib.request.ProxyHandler({})] if _is_loopback(parts.hostname) else []
        self._opener = urllib.request.build_opener(*handlers)

    def __repr__(self) -> str:
        return f"RemotePredictor({self.url!r})"

    def health(self) -> dict[str, Any]:
        """``GET /health`` of the server."""
        return self._request("GET", "/health")

    def predict(self, question: str, choices: Sequence[str], *, top_k: int = 3) -> RemotePrediction:
        """The server's prediction for one question.

        Raises:
            ServerRequestError: the server refused the question (a ``ValueError``).
            ServerUnavailableError: no server answers at the URL.
            ServerError: the server failed, is still loading, or is not a kgfuse server.
        """
        rec = self._request("POST", "/predict", {"question": question, "choices": list(choices), "top_k": top_k})
        return RemotePrediction({k: v for k, v in rec.items() if k not in ("id", "question", "choices")})

    def predict_many(self, questions: Sequence[Mapping[str, Any]], *, top_k: int = 3) -> list[dict[str, Any]]:
        """The records of several questions (``{"question", "choices", "id"}`` each) in one request."""
        return self._request("POST", "/predict", {"questions": list(questions), "top_k": top_k})["predictions"]

    def _request(self, method: str, path: str, payload: Any = None) -> Any:
        import urllib.error
        import urllib.request

        data = None if payload is None else json.dumps(payload, ensure_ascii=False).encode("utf-8")
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            raise self._http_error(e.code, e.read(), path) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            reason = getattr(reason, "strerror", None) or reason  # "Connection refused", not "[Errno 111] ..."
            raise ServerUnavailableError(f"no kgfuse server answers at {self.url} ({reason}); start one with "
                                         "`kgfuse serve --model DIR`") from None
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ServerError(f"{self.url}{path} did not answer JSON: is it a `kgfuse serve`?") from None

    def _http_error(self, status: int, raw: bytes, path: str) -> ServerError:
        try:
            message = json.loads(raw.decode("utf-8"))["error"]
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
            message = None
        if message is None:
            return ServerError(f"{self.url}{path} answered HTTP {status} without a kgfuse error: is it a `kgfuse serve`?")
        if status == 400:
            return ServerRequestError(message)
        if status == 503:
            return ServerError(f"the server at {self.url} is still loading its model: try again in a few seconds")
        return ServerError(f"the server at {self.url} answered HTTP {status}: {message}")

