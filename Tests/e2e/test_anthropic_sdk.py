"""End-to-end: the official Anthropic Python SDK against a running `chronicle serve`, on `/v1/messages`.

One small upstream in this process answers both as Anthropic (under /anthropic, replaying the recorded
Anthropic responses) and as OpenAI (under /openai, replaying the recorded OpenAI responses). Chronicle's
`ant` provider (Anthropic format, so the call passes through) and `oai` provider (OpenAI format, so the
call is translated) point at it through chronicle.toml. The model name picks the answer: `…-text`,
`…-tools`, `…-thinking`, or `…-error-STATUS`.
"""
import json
import pathlib
import sqlite3
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anthropic
import pytest

from chronicle_server import free_port, start_chronicle

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "Tests" / "Fixtures" / "providers"

# A streamed Anthropic answer that thinks, then answers: the recordings have no thinking, so it is written
# here in the shape Anthropic sends (a signed thinking block, then text).
ANTHROPIC_THINKING_STREAM = "".join(
    f"event: {name}\ndata: {json.dumps(data)}\n\n"
    for name, data in [
        ("message_start", {"type": "message_start", "message": {
            "id": "msg_01Think", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 20, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "thinking_delta", "thinking": "Collies are dogs. "}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "thinking_delta", "thinking": "Lassie is one."}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("ping", {"type": "ping"}),
        ("content_block_start", {"type": "content_block_start", "index": 1,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "text_delta", "text": "Lassie is a Collie."}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                           "usage": {"output_tokens": 30}}),
        ("message_stop", {"type": "message_stop"}),
    ]
)
ANTHROPIC_THINKING_MESSAGE = {
    "id": "msg_01Think", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
    "content": [{"type": "thinking", "thinking": "Collies are dogs. Lassie is one.", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA"},
                {"type": "text", "text": "Lassie is a Collie."}],
    "stop_reason": "end_turn", "stop_sequence": None, "usage": {"input_tokens": 20, "output_tokens": 30},
}


def openai_chunk(delta, finish=None, usage=None):
    chunk = {"id": "chatcmpl-think", "object": "chat.completion.chunk", "created": 1717229237, "model": "deepseek-r1",
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if usage is None else []}
    if usage is not None:
        chunk["usage"] = usage
    return f"data: {json.dumps(chunk)}\n\n"


# An OpenAI-format reasoning model's stream (DeepSeek's `reasoning_content`).
OPENAI_THINKING_STREAM = (
    openai_chunk({"role": "assistant", "content": ""})
    + openai_chunk({"reasoning_content": "Collies are dogs. "})
    + openai_chunk({"reasoning_content": "Lassie is one."})
    + openai_chunk({"content": "Lassie is a Collie."})
    + openai_chunk({}, finish="stop")
    + openai_chunk(None, usage={"prompt_tokens": 20, "completion_tokens": 30, "total_tokens": 50})
    + "data: [DONE]\n\n"
)
OPENAI_THINKING_RESPONSE = {
    "id": "chatcmpl-think", "object": "chat.completion", "created": 1717229237, "model": "deepseek-r1",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "Lassie is a Collie.", "reasoning_content": "Collies are dogs. Lassie is one."}}],
    "usage": {"prompt_tokens": 20, "completion_tokens": 30, "total_tokens": 50},
}


def kind_of(model):
    for kind in ("tools", "thinking"):
        if model.endswith(kind):
            return kind
    return "text"


class Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    received = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        raw = self.rfile.read(int(self.headers["content-length"]))
        body = json.loads(raw)
        Upstream.received.append({"path": self.path, "raw": raw, "body": body, "headers": dict(self.headers)})
        model = body.get("model", "")
        anthropic_format = self.path.startswith("/anthropic/")
        if self.path.endswith("/count_tokens"):
            return self.reply(200, "application/json", b'{"input_tokens":14}')
        if "-error-" in model:
            status = int(model.rsplit("-", 1)[1])
            if anthropic_format:
                error_type = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                              404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
                              500: "api_error", 529: "overloaded_error"}[status]
                payload = {"type": "error", "error": {"type": error_type, "message": f"upstream {status}"}}
            else:
                payload = {"error": {"message": f"upstream {status}", "type": "error"}}
            return self.reply(status, "application/json", json.dumps(payload).encode(), [("retry-after", "2")])
        kind = kind_of(model)
        stream = bool(body.get("stream"))
        if anthropic_format:
            if kind == "thinking":
                data = ANTHROPIC_THINKING_STREAM.encode() if stream else json.dumps(ANTHROPIC_THINKING_MESSAGE).encode()
            else:
                name = f"anthropic_{kind}_response_" + ("streaming.txt" if stream else "nonstreaming.json")
                data = (FIXTURES / name).read_bytes()
        else:
            if kind == "thinking":
                data = OPENAI_THINKING_STREAM.encode() if stream else json.dumps(OPENAI_THINKING_RESPONSE).encode()
            else:
                name = f"openai_{kind}_response_" + ("streaming.txt" if stream else "nonstreaming.json")
                data = (FIXTURES / name).read_bytes()
        return self.reply(200, "text/event-stream" if stream else "application/json", data)

    def reply(self, status, content_type, data, headers=()):
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


UPSTREAM = {}
RECORDED = []


@pytest.fixture(scope="module")
def gateway():
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    UPSTREAM["port"] = upstream.server_port
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        config = pathlib.Path(directory) / "chronicle.toml"
        config.write_text(
            f"""
[retry]
max_tries = 1

[[providers]]
name = "ant"
url = "http://127.0.0.1:{upstream.server_port}/anthropic/v1/messages"
prefix = "ant/"
api_key = "sk-ant-upstream"
format = "anthropic"

[[providers]]
name = "oai"
url = "http://127.0.0.1:{upstream.server_port}/openai/v1/chat/completions"
prefix = "oai/"
api_key = "sk-oai-upstream"
"""
        )
        process = None
        try:
            process = start_chronicle(config, port, directory)
            yield anthropic.Anthropic(base_url=f"http://127.0.0.1:{port}", api_key="client-key", max_retries=0)
        finally:
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
            upstream.shutdown()
            rows = sqlite3.connect(pathlib.Path(directory) / "chronicle.db").execute(
                "SELECT provider, http_status, chat_request, meta, input_tokens, output_tokens, request_user_id "
                "FROM chronicle_events WHERE event_type = 'chronicle_llm_request'"
            ).fetchall()
            RECORDED.extend(rows)


def direct():
    """The SDK pointed straight at the mock's Anthropic side: what a call without Chronicle gives."""
    return anthropic.Anthropic(base_url=f"http://127.0.0.1:{UPSTREAM['port']}/anthropic", api_key="sk-direct",
                               max_retries=0)


def fixture(name):
    return json.loads((FIXTURES / name).read_text())


TOOLS = [{"name": "get_weather", "description": "The weather in a city",
          "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}]
QUESTION = [{"role": "user", "content": "Who was Lassie the dog?"}]


def last_request():
    return Upstream.received[-1]


# Passthrough: an Anthropic-format upstream.

@pytest.mark.parametrize("kind", ["text", "tools", "thinking"])
def test_create_passthrough(gateway, kind):
    extra = {"tools": TOOLS} if kind == "tools" else {}
    if kind == "thinking":
        extra = {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    message = gateway.messages.create(model=f"ant/claude-{kind}", max_tokens=1024, messages=QUESTION, **extra)
    # Byte for byte: the SDK parses the same message from the gateway as from the upstream directly.
    expected = direct().messages.create(model=f"claude-{kind}", max_tokens=1024, messages=QUESTION, **extra)
    assert message.model_dump() == expected.model_dump()
    sent = Upstream.received[-2]
    assert sent["path"] == "/anthropic/v1/messages"
    assert sent["body"]["model"] == f"claude-{kind}"
    assert sent["headers"]["x-api-key"] == "sk-ant-upstream"
    # The SDK's own API version reaches the upstream, as on a direct call.
    assert sent["headers"]["anthropic-version"] == Upstream.received[-1]["headers"]["anthropic-version"]
    if kind == "thinking":
        assert sent["body"]["thinking"] == {"type": "enabled", "budget_tokens": 1024}
        assert message.content[0].type == "thinking"


@pytest.mark.parametrize("kind", ["text", "tools", "thinking"])
def test_stream_passthrough(gateway, kind):
    extra = {"tools": TOOLS} if kind == "tools" else {}
    with gateway.messages.stream(model=f"ant/claude-{kind}", max_tokens=1024, messages=QUESTION, **extra) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_message()
    with direct().messages.stream(model=f"claude-{kind}", max_tokens=1024, messages=QUESTION, **extra) as stream:
        direct_events = [event.type for event in stream]
        expected = stream.get_final_message()
    assert final.model_dump() == expected.model_dump()
    assert events == direct_events
    if kind == "tools":
        assert "input_json" in events
        assert any(block.type == "tool_use" and block.input for block in final.content)
    if kind == "thinking":
        assert "thinking" in events and "signature" in events
        assert final.content[0].thinking == "Collies are dogs. Lassie is one."


def test_stream_raw_bytes_passthrough(gateway):
    """The SSE body the client reads is the upstream's, byte for byte."""
    response = gateway.messages.with_raw_response.create(
        model="ant/claude-tools", max_tokens=1024, messages=QUESTION, tools=TOOLS, stream=True)
    body = b"".join(response.http_response.iter_bytes())
    assert body == (FIXTURES / "anthropic_tools_response_streaming.txt").read_bytes()
    assert response.headers.get("x-chronicle-call-id")


# Translation: an OpenAI-format upstream.

def test_create_translated_text(gateway):
    message = gateway.messages.create(model="oai/gpt-text", max_tokens=1024, system="Be kind", messages=QUESTION)
    expected = fixture("openai_text_response_nonstreaming.json")
    assert message.content[0].type == "text"
    assert message.content[0].text == expected["choices"][0]["message"]["content"]
    assert message.stop_reason == "end_turn"
    assert message.id.startswith("msg_")
    assert message.usage.input_tokens == expected["usage"]["prompt_tokens"]
    assert message.usage.output_tokens == expected["usage"]["completion_tokens"]
    sent = last_request()["body"]
    assert sent["messages"][0] == {"role": "system", "content": "Be kind"}
    assert sent["model"] == "gpt-text"


def test_create_translated_tools(gateway):
    message = gateway.messages.create(model="oai/gpt-tools", max_tokens=1024, messages=QUESTION, tools=TOOLS,
                                      tool_choice={"type": "any"})
    assert message.stop_reason == "tool_use"
    calls = [block for block in message.content if block.type == "tool_use"]
    assert calls and calls[0].id.startswith("toolu_") and isinstance(calls[0].input, dict)
    sent = last_request()["body"]
    assert sent["tool_choice"] == "required"
    assert sent["tools"][0]["function"]["name"] == "get_weather"


def test_create_translated_thinking(gateway):
    message = gateway.messages.create(model="oai/gpt-thinking", max_tokens=1024, messages=QUESTION,
                                      thinking={"type": "enabled", "budget_tokens": 1024})
    assert [block.type for block in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "Collies are dogs. Lassie is one."
    assert message.content[1].text == "Lassie is a Collie."
    assert "reasoning_effort" in last_request()["body"]


@pytest.mark.parametrize("kind", ["text", "tools", "thinking"])
def test_stream_translated(gateway, kind):
    extra = {"tools": TOOLS} if kind == "tools" else {}
    with gateway.messages.stream(model=f"oai/gpt-{kind}", max_tokens=1024, messages=QUESTION, **extra) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_message()
    # The same answer, not streamed, translated the same way.
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert final.id.startswith("msg_")
    assert final.usage.output_tokens > 0
    if kind == "text":
        text = "".join(
            json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
            for line in (FIXTURES / "openai_text_response_streaming.txt").read_text().splitlines()
            if line.startswith("data: {") and json.loads(line[6:])["choices"])
        assert final.content[0].text == text
        assert final.stop_reason == "end_turn"
    if kind == "tools":
        assert "input_json" in events
        calls = [block for block in final.content if block.type == "tool_use"]
        assert calls and calls[0].id.startswith("toolu_") and calls[0].input
        assert final.stop_reason == "tool_use"
    if kind == "thinking":
        assert "thinking" in events
        assert [block.type for block in final.content] == ["thinking", "text"]
        assert final.content[0].thinking == "Collies are dogs. Lassie is one."
        assert final.content[1].text == "Lassie is a Collie."
        assert final.usage.input_tokens == 20 and final.usage.output_tokens == 30


@pytest.mark.parametrize("prefix", ["ant", "oai"])
def test_multi_turn_tool_conversation(gateway, prefix):
    model = f"{prefix}/m-tools"
    first = gateway.messages.create(model=model, max_tokens=1024, tools=TOOLS,
                                    messages=[{"role": "user", "content": "What is the weather in Boston?"}])
    call = next(block for block in first.content if block.type == "tool_use")
    history = [
        {"role": "user", "content": "What is the weather in Boston?"},
        {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                      "content": [{"type": "text", "text": "Sunny, 22C"}]}]},
    ]
    second = gateway.messages.create(model=f"{prefix}/m-text", max_tokens=1024, tools=TOOLS, messages=history)
    assert second.content[0].type == "text"
    sent = last_request()["body"]
    if prefix == "ant":
        # Passed through as the client wrote it.
        assert sent["messages"] == json.loads(json.dumps(history))
    else:
        tool_calls = sent["messages"][1]["tool_calls"]
        assert tool_calls[0]["function"]["name"] == call.name
        tool_message = sent["messages"][2]
        assert tool_message["role"] == "tool"
        assert tool_message["tool_call_id"] == tool_calls[0]["id"]
        assert "Sunny, 22C" in json.dumps(tool_message["content"])


ERRORS = [
    (400, anthropic.BadRequestError), (401, anthropic.AuthenticationError), (403, anthropic.PermissionDeniedError),
    (404, anthropic.NotFoundError), (413, anthropic.ContentTooLargeError), (429, anthropic.RateLimitError),
    (500, anthropic.InternalServerError), (529, anthropic.OverloadedError),
]


@pytest.mark.parametrize("prefix", ["ant", "oai"])
@pytest.mark.parametrize("status,exception", ERRORS)
def test_errors_are_typed(gateway, prefix, status, exception):
    with pytest.raises(exception) as raised:
        gateway.messages.create(model=f"{prefix}/m-error-{status}", max_tokens=10, messages=QUESTION)
    error = raised.value
    assert error.status_code == status
    assert error.body["type"] == "error"
    assert error.body["error"]["message"] == f"upstream {status}"
    assert error.response.headers.get("x-chronicle-call-id")
    if status == 429:
        assert error.response.headers.get("retry-after") == "2"
    # Streamed, the failure comes before the first event: the same typed exception.
    with pytest.raises(exception):
        with gateway.messages.stream(model=f"{prefix}/m-error-{status}", max_tokens=10, messages=QUESTION) as stream:
            stream.get_final_message()


def test_bad_request_named(gateway):
    with pytest.raises(anthropic.BadRequestError) as raised:
        gateway.messages.create(model="ant/claude-text", max_tokens=0, messages=QUESTION)
    assert "max_tokens" in raised.value.body["error"]["message"]


def test_count_tokens(gateway):
    counted = gateway.messages.count_tokens(model="ant/claude-text", messages=QUESTION)
    assert counted.input_tokens == 14
    assert last_request()["path"] == "/anthropic/v1/messages/count_tokens"
    with pytest.raises(anthropic.NotFoundError) as raised:
        gateway.messages.count_tokens(model="oai/gpt-text", messages=QUESTION)
    assert "'oai'" in raised.value.body["error"]["message"]


def test_metadata_user_id(gateway):
    gateway.messages.create(model="ant/claude-text", max_tokens=10, messages=QUESTION,
                            metadata={"user_id": "user-e2e-7"})


def teardown_module(module):
    """After the server stopped: every call is one row, with the API, the body as sent, and usage."""
    assert len(RECORDED) >= 20, RECORDED
    assert all(json.loads(row[3])["api"] == "anthropic_messages" for row in RECORDED)
    assert any(row[6] == "user-e2e-7" for row in RECORDED)
    assert any(row[0] == "ant" and row[1] == 200 and row[4] == 16 for row in RECORDED)
    assert any(row[0] == "oai" and row[1] == 200 for row in RECORDED)
    assert any(row[1] == 429 for row in RECORDED)
    assert not any("sk-ant-upstream" in (row[2] or "") for row in RECORDED)
