"""`kgfuse serve` and `kgfuse predict --server`: a model loaded once answers over HTTP exactly
what `kgfuse predict` answers, and the client process imports no model code."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kgfuse.tasks import api
from kgfuse.tasks.cli import main
from kgfuse.tasks.serve import RemotePredictor, ServerError, ServerRequestError

QUESTION = "Where would you put a plate after drying it?"
CHOICES = ["cupboard", "oven", "roof"]
MILK = {"question": "Where do you keep milk cold?", "choices": ["fridge", "oven"]}
HEAVY = ("torch", "transformers", "spacy", "torch_geometric", "kgfuse.fusion", "kgfuse.encoders",
         "kgfuse.tasks.inference", "kgfuse.tasks.pipeline")


@pytest.fixture(autouse=True)
def _kgfuse_home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("KGFUSE_HOME", str(tmp_path_factory.mktemp("kgfuse_home")))


@pytest.fixture(scope="module")
def model_dir(trained_run) -> Path:
    return trained_run[1].output_dir / "model"


@pytest.fixture(scope="module")
def server(model_dir):
    """The tiny trained model served in this process on a free port (one torch thread)."""
    import torch

    threads = torch.get_num_threads()
    with api.make_server(model_dir, port=0, threads=1) as s:
        s.start()
        yield s
    torch.set_num_threads(threads)


def _call(url: str, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """``(status, headers, parsed JSON)`` of one raw request."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), json.loads(resp.read().decode("utf-8"))
    finally:
        conn.close()


def _post(url: str, payload) -> tuple[int, dict]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
    status, _, answer = _call(url, "POST", "/predict", body, {"Content-Type": "application/json"})
    return status, answer


def _local(predictor, questions, top_k=3):
    """What `api.predict` answers in this process, as JSON (what `kgfuse predict --questions` writes)."""
    return json.loads(json.dumps(api.predict(predictor, questions=questions, top_k=top_k).records))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ the endpoints


def test_one_question_is_answered_as_api_predict_answers_it(server):
    status, rec = _post(server.url, {"id": "q1", "question": QUESTION, "choices": CHOICES})
    assert status == 200
    (want,) = _local(server.predictor, [{"id": "q1", "question": QUESTION, "choices": CHOICES}])
    assert rec == want  # the same record: predicted answer, scores, probabilities, explanation, ...
    assert list(rec) == ["id", "question", "choices", "scores", "probs", "predicted", "choice", "explanation",
                         "concepts", "knowledge", "knowledge_per_choice"]
    assert rec["choice"] in CHOICES and len(rec["scores"]) == 3 and rec["explanation"]


def test_several_questions_in_one_request_keep_their_order_and_top_k(server):
    questions = [{"id": 1, "question": QUESTION, "choices": CHOICES}, MILK]
    status, answer = _post(server.url, {"questions": questions, "top_k": 1})
    assert status == 200
    assert answer == {"predictions": _local(server.predictor, questions, top_k=1)}
    assert [r["id"] for r in answer["predictions"]] == [1, None]
    assert all(len(r["explanation"]) <= 1 for r in answer["predictions"])


def test_health_names_the_model_and_its_graph(server, model_dir):
    recorded = json.loads((model_dir / "kgfuse_pipeline.json").read_text())["graph"]["hash"]
    status, _, before = _call(server.url, "GET", "/health")
    assert status == 200
    assert before["ready"] is True and before["model"] == str(model_dir.resolve())
    assert before["graph_hash"] == recorded == server.predictor.graph.hash and before["uses_graph"] is True
    assert before["threads"] == 1  # torch's setting as a request thread sees it
    _post(server.url, MILK)
    assert _call(server.url, "GET", "/health")[2]["answered"] == before["answered"] + 1


@pytest.mark.parametrize("body, message", [
    (b"{not json", "the request body is not valid JSON: Expecting property name"),
    (b"\xff\xfe", "the request body is not UTF-8 text"),
    ([QUESTION, CHOICES], "the request body must be a JSON object"),
    ({"choices": CHOICES}, "request: 'question' is missing (a non-empty string)"),
    ({"question": QUESTION}, "request: 'choices' is missing (a list of at least two non-empty strings)"),
    ({"question": " ", "choices": CHOICES}, "request: 'question' must be a non-empty string"),
    ({"question": QUESTION, "choices": ["cupboard"]}, "request: 'choices' must be a list of at least two"),
    ({"question": QUESTION, "choices": CHOICES, "top_k": "2"}, "'top_k' must be a non-negative integer, not \"2\""),
    ({"questions": []}, "'questions' must be a non-empty list"),
    ({"questions": [MILK, {"question": QUESTION, "choices": "cupboard"}]}, "questions[1]: 'choices' must be a list"),
    ({"questions": [MILK, "Where?"]}, "questions[1]: expected a JSON object with 'question' and 'choices'"),
    ({"questions": [MILK], "question": QUESTION}, "give 'question' and 'choices' (one question) or 'questions'"),
])
def test_bad_requests_are_refused_with_the_field_named(server, body, message):
    answered = server.answered
    status, answer = _post(server.url, body)
    assert status == 400 and answer["error"].startswith(message), answer
    assert server.answered == answered  # nothing of a refused request is answered


def test_unknown_paths_wrong_methods_and_missing_length(server):
    status, _, answer = _call(server.url, "GET", "/predictions")
    assert status == 404 and answer == {"error": "no such path: /predictions (POST /predict, GET /health)"}
    status, headers, answer = _call(server.url, "GET", "/predict")
    assert status == 405 and headers["Allow"] == "POST" and answer == {"error": "use POST for /predict"}
    assert _call(server.url, "POST", "/health", b"{}")[0] == 405
    assert _call(server.url, "DELETE", "/predict")[0] == 405
    status, _, answer = _call(server.url, "POST", "/predict")  # http.client sends Content-Length: 0
    assert status == 400 and answer["error"].startswith("the request body is empty")
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=60)
    try:
        conn.putrequest("POST", "/predict")  # no Content-Length header at all
        conn.endheaders()
        resp = conn.getresponse()
        assert resp.status == 411 and "Content-Length header" in json.loads(resp.read())["error"]
    finally:
        conn.close()


def test_a_failing_model_answers_500_and_the_server_goes_on(server, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(server.predictor, "predict", boom)
    assert _post(server.url, MILK) == (500, {"error": "RuntimeError: out of memory"})
    monkeypatch.undo()
    assert _post(server.url, MILK)[0] == 200


def test_a_server_still_loading_says_so(model_dir):
    with api.make_server(model_dir, port=0, load=False) as s:
        s.start()
        status, _, health = _call(s.url, "GET", "/health")
        assert status == 200 and health["ready"] is False and health["model"] == str(model_dir.resolve())
        status, answer = _post(s.url, MILK)
        assert status == 503 and "still loading" in answer["error"]
        assert _post(s.url, {"question": QUESTION})[0] == 400  # a bad request is still told so
        with pytest.raises(ServerError, match="still loading its model"):
            RemotePredictor(s.url).predict(QUESTION, CHOICES)


def test_remote_predictor_works_with_api_predict(server):
    remote = RemotePredictor(server.url + "/")
    got = api.predict(remote, QUESTION, CHOICES)
    assert got.records == _local(server.predictor, [{"question": QUESTION, "choices": CHOICES}])
    assert got.predictions[0].choice == got.records[0]["choice"]
    with pytest.raises(ServerRequestError, match="'choices' must be a list") as e:
        remote.predict(QUESTION, ["cupboard"])
    assert isinstance(e.value, ValueError)  # as a local predictor's refusal
    with pytest.raises(ValueError, match="must look like http://127.0.0.1:8765"):
        RemotePredictor("127.0.0.1:8765")


# ------------------------------------------------------------------ the command line


def test_predict_with_server_prints_what_the_local_command_prints_without_importing_torch(
        server, model_dir, tmp_path, capsys):
    lines = [json.dumps({"id": "q1", "question": QUESTION, "choices": CHOICES}), "not json",
             json.dumps({"question": QUESTION, "choices": ["cupboard"]}), json.dumps(MILK)]
    one = ["predict", "--question", QUESTION, "--choices", *CHOICES]
    code = (
        "import json, sys\n"
        "from kgfuse.tasks.cli import main\n"
        f"url = {server.url!r}\n"
        f"rc = [main({one!r} + ['--server', url]), main({one!r} + ['--server', url, '--json', '-q']),\n"
        f"      main(['predict', '--server', url, '--questions', '-', '--output', {str(tmp_path / 'remote.jsonl')!r}])]\n"
        f"print(json.dumps({{'rc': rc, 'imported': [m for m in {HEAVY!r} if m in sys.modules]}}))\n"
    )
    env = {**os.environ, "http_proxy": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}  # bypassed
    proc = subprocess.run([sys.executable, "-c", code], input="\n".join(lines) + "\n", capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    *printed, summary = proc.stdout.splitlines()
    summary = json.loads(summary)
    assert summary == {"rc": [0, 0, 2], "imported": []}, proc.stderr  # one rejected line: status 2, as locally
    assert "line 2: not valid JSON" in proc.stderr and "answered 2 question(s) by " + server.url in proc.stderr

    # the same commands with the model loaded in this process
    assert main(one + ["--model", str(model_dir), "--threads", "1"]) == 0
    assert main(one + ["--model", str(model_dir), "--threads", "1", "--json", "-q"]) == 0
    assert main(["predict", "--model", str(model_dir), "--threads", "1", "--questions",
                 str(_write(tmp_path / "q.jsonl", lines)), "--output", str(tmp_path / "local.jsonl")]) == 2
    assert "\n".join(printed) + "\n" == capsys.readouterr().out
    assert (tmp_path / "remote.jsonl").read_text() == (tmp_path / "local.jsonl").read_text()
    assert len((tmp_path / "remote.jsonl").read_text().splitlines()) == 4


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_predict_without_a_server_says_how_to_start_one(capsys):
    url = f"http://127.0.0.1:{_free_port()}"
    assert main(["predict", "--server", url, "--question", QUESTION, "--choices", *CHOICES]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"kgfuse predict: error: no kgfuse server answers at {url} (Connection refused); "
                   "start one with `kgfuse serve --model DIR`")


@pytest.mark.parametrize("extra, message", [
    (["--server", "http://127.0.0.1:8765", "--model", "m"], "--model cannot be combined with --server"),
    (["--server", "http://127.0.0.1:8765", "--graph", "g", "--threads", "2"], "--graph, --threads cannot be combined"),
    (["--server", "localhost:8765"], "--server: the server URL must look like http://127.0.0.1:8765"),
    ([], "give --model DIR, or --server URL of a running `kgfuse serve --model DIR`"),
    (["--model", "m", "--choices", "cupboard"], "give at least two --choices"),
])
def test_predict_option_mistakes_are_one_clear_message(extra, message):
    with pytest.raises(SystemExit, match=re.escape(message)):
        main(["predict", "--question", QUESTION, "--choices", *CHOICES, *extra])


def test_serve_refuses_a_port_in_use_before_loading_anything(server, capsys):
    port = server.server_address[1]
    assert main(["serve", "--model", "no-such-model", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"kgfuse serve: error: cannot listen on 127.0.0.1:{port}: Address already in use" in err


def test_serve_command_prints_its_url_answers_and_stops_on_sigterm(model_dir, tmp_path):
    env = {**os.environ, "KGFUSE_HOME": str(tmp_path)}
    env.pop("OMP_NUM_THREADS", None)
    proc = subprocess.Popen([sys.executable, "-m", "kgfuse.tasks.cli", "serve", "--model", str(model_dir), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()  # printed once the model is loaded
        m = re.match(r"serving (.+) at (http://127\.0\.0\.1:\d+) \(POST /predict, GET /health\); Ctrl-C to stop$",
                     line.strip())
        assert m, (line, proc.stderr.read() if proc.poll() is not None else "")
        assert m.group(1) == str(model_dir.resolve())
        status, _, health = _call(m.group(2), "GET", "/health")
        assert status == 200 and health["ready"] is True and health["threads"] == 1  # one torch thread by default
        status, rec = _post(m.group(2), MILK)
        assert status == 200 and rec["choice"] in MILK["choices"]
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=120)
        err = proc.stderr.read()
    assert rc == 0, err
    assert "SIGTERM: stopping the server" in err and "server stopped (1 question answered)" in err
    assert "POST /predict 200 1 question" in err
