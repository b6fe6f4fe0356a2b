"""End-to-end: the official OpenAI Python SDK against a running `chronicle serve`.

A small upstream in this process replays the recorded OpenAI responses; Chronicle's `openai` provider is
pointed at it through chronicle.toml, exactly as a user would point it at a self-hosted gateway.
"""
import json
import sqlite3
import pathlib
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest

from chronicle_server import free_port, start_chronicle

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "Tests" / "Fixtures" / "providers"


class Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    received = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        Upstream.received.append({"body": body, "headers": dict(self.headers)})
        kind = "tools" if body.get("tools") else "text"
        if body.get("model") == "broken-model":
            payload = json.dumps({"error": {"message": "The model does not exist", "type": "invalid_request_error"}})
            return self.reply(404, "application/json", payload.encode())
        if body.get("stream"):
            data = (FIXTURES / f"openai_{kind}_response_streaming.txt").read_bytes()
            return self.reply(200, "text/event-stream", data)
        data = (FIXTURES / f"openai_{kind}_response_nonstreaming.json").read_bytes()
        return self.reply(200, "application/json", data)

    def reply(self, status, content_type, data):
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def gateway():
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        config = pathlib.Path(directory) / "chronicle.toml"
        config.write_text(
            f"""
[[providers]]
name = "openai"
url = "http://127.0.0.1:{upstream.server_port}/v1/chat/completions"
prefix = "gpt-"
api_key = "sk-upstream"
format = {{ type = "open_ai", transforms = {{ supports_message_name = true, system_in_messages = true, include_stream_usage = true }} }}

[[aliases]]
name = "smart"
models = [{{ model = "gpt-3.5-turbo", provider = "openai" }}]
"""
        )
        process = None
        try:
            process = start_chronicle(config, port, directory)
            yield openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="client-key", max_retries=0)
        finally:
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
            upstream.shutdown()
            # SIGTERM flushed the log: every call made through the SDK is in the embedded SQLite default.
            rows = sqlite3.connect(pathlib.Path(directory) / "chronicle.db").execute(
                "SELECT event_type, provider, http_status, chat_request FROM chronicle_events"
            ).fetchall()
            RECORDED.extend(rows)


RECORDED = []


def fixture(name):
    return json.loads((FIXTURES / name).read_text())


def test_text_nonstreaming(gateway):
    response = gateway.chat.completions.create(
        model="gpt-3.5-turbo", messages=[{"role": "user", "content": "Who was Lassie the dog?"}], max_tokens=1024
    )
    expected = fixture("openai_text_response_nonstreaming.json")
    assert response.id == expected["id"]
    assert response.object == "chat.completion"
    assert response.choices[0].message.content == expected["choices"][0]["message"]["content"]
    assert response.choices[0].finish_reason == "stop"
    assert response.usage.total_tokens == 112
    assert response.meta["provider"] == "openai"


def test_text_streaming(gateway):
    stream = gateway.chat.completions.create(
        model="smart", messages=[{"role": "user", "content": "Who was Lassie the dog?"}], stream=True
    )
    text = ""
    finish = None
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert text.startswith("Lassie was a fictional Collie dog")
    assert finish == "stop"


def test_stream_usage_when_asked(gateway):
    stream = gateway.chat.completions.create(
        model="gpt-3.5-turbo",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    usage = [chunk.usage for chunk in stream if chunk.usage]
    assert usage[-1].total_tokens == 77


def tool_request():
    request = fixture("openai_tools.json")
    return dict(model="gpt-3.5-turbo", messages=request["messages"], tools=request["tools"],
                tool_choice=request["tool_choice"], parallel_tool_calls=False)


def test_tools_nonstreaming(gateway):
    response = gateway.chat.completions.create(**tool_request())
    call = response.choices[0].message.tool_calls[0]
    assert call.function.name == "get_characteristics"
    assert json.loads(call.function.arguments) == {"name": "Daniel", "hair_color": "brown"}
    assert Upstream.received[-1]["body"]["parallel_tool_calls"] is False


def test_tools_streaming(gateway):
    arguments = ""
    name = None
    for chunk in gateway.chat.completions.create(stream=True, **tool_request()):
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or []:
                name = name or call.function.name
                arguments += call.function.arguments or ""
    assert name == "get_characteristics"
    assert json.loads(arguments) == {"name": "Daniel", "hair_color": "brown"}


def test_errors_are_typed(gateway):
    with pytest.raises(openai.NotFoundError) as not_found:
        gateway.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert "no-such-model" in str(not_found.value)
    with pytest.raises(openai.NotFoundError):
        gateway.chat.completions.create(model="gpt-x", messages=[{"role": "user", "content": "x"}],
                                        extra_body={"provider": "openai"}, extra_headers={"x-chronicle-model": "broken-model"})
    with pytest.raises(openai.BadRequestError):
        gateway.chat.completions.create(model="gpt-3.5-turbo", messages=[{"role": "user", "content": 5}])


def test_models_list(gateway):
    models = [model.id for model in gateway.models.list()]
    assert "smart" in models


def teardown_module(module):
    """After the server stopped: the calls that reached the gateway are all in the database."""
    assert len(RECORDED) >= 7, RECORDED
    assert all(row[0] == "chronicle_llm_request" for row in RECORDED)
    assert any(row[2] == 404 for row in RECORDED)
    assert not any("sk-upstream" in (row[3] or "") for row in RECORDED)
