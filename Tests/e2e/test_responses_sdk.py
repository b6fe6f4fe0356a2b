"""End-to-end: the official OpenAI Python SDK's Responses API against a running `chronicle serve`.

One small upstream in this process answers both as OpenAI's Responses API (under /openai, the `oai`
provider, configured with `responses_api = true`, so calls pass through) and as Anthropic's Messages API
(under /anthropic, the `ant` provider, so calls are translated). Both mocks answer by what the request
asks: a function call when tools are offered and no function output came back yet, the forced tool's JSON
when a structured answer is asked for, text otherwise; streamed in each API's documented event sequence.
"""
import json
import pathlib
import sqlite3
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest

from chronicle_server import free_port, start_chronicle

STORY = ["Lassie was ", "a brave Collie ", "who always came home."]
PERSON = {"name": "Lassie", "age": 7}
CALL_ARGUMENTS = ['{"location":', '"Boston, MA"}']
WEATHER_ANSWER = "It is sunny and 22C in Boston."


def sse(events):
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()


# The OpenAI side: a Responses API.

def openai_answer(body):
    """What the mock model says: ("call", pieces), ("text", pieces)."""
    items = body["input"] if isinstance(body["input"], list) else []
    answered = any(item.get("type") == "function_call_output" for item in items)
    if body.get("tools") and not answered:
        return "call", CALL_ARGUMENTS
    fmt = (body.get("text") or {}).get("format") or {}
    if fmt.get("type") in ("json_schema", "json_object"):
        text = json.dumps(PERSON)
        return "text", [text[:10], text[10:]]
    return "text", [WEATHER_ANSWER] if answered else STORY


def openai_response(body, status, output, usage):
    return {"id": "resp_mock1", "object": "response", "created_at": 1741476542, "status": status, "error": None,
            "incomplete_details": None, "instructions": body.get("instructions"), "max_output_tokens": None,
            "model": "gpt-4.1-2025-04-14", "output": output, "parallel_tool_calls": True,
            "previous_response_id": body.get("previous_response_id"), "reasoning": {"effort": None, "summary": None},
            "store": body.get("store", True), "temperature": 1.0, "text": body.get("text") or {"format": {"type": "text"}},
            "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools", []), "top_p": 1.0,
            "truncation": "disabled", "usage": usage, "user": None, "metadata": {}}


def openai_reply(body):
    kind, pieces = openai_answer(body)
    whole = "".join(pieces)
    if kind == "call":
        item = {"type": "function_call", "id": "fc_mock1", "call_id": "call_mock1", "name": body["tools"][0]["name"],
                "arguments": whole, "status": "completed"}
    else:
        item = {"type": "message", "id": "msg_mock1", "status": "completed", "role": "assistant",
                "content": [{"type": "output_text", "text": whole, "annotations": [], "logprobs": []}]}
    usage = {"input_tokens": 30, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 12,
             "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 42}
    final = openai_response(body, "completed", [item], usage)
    if not body.get("stream"):
        return "application/json", json.dumps(final).encode()
    started = openai_response(body, "in_progress", [], None)
    events = [("response.created", {"response": started}), ("response.in_progress", {"response": started})]
    if kind == "call":
        events.append(("response.output_item.added", {"output_index": 0, "item": dict(item, arguments="", status="in_progress")}))
        events += [("response.function_call_arguments.delta", {"item_id": "fc_mock1", "output_index": 0, "delta": piece})
                   for piece in pieces]
        events.append(("response.function_call_arguments.done", {"item_id": "fc_mock1", "output_index": 0, "arguments": whole}))
    else:
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        events.append(("response.output_item.added", {"output_index": 0, "item": dict(item, content=[], status="in_progress")}))
        events.append(("response.content_part.added", {"item_id": "msg_mock1", "output_index": 0, "content_index": 0, "part": part}))
        events += [("response.output_text.delta", {"item_id": "msg_mock1", "output_index": 0, "content_index": 0,
                                                   "delta": piece, "logprobs": []}) for piece in pieces]
        events.append(("response.output_text.done", {"item_id": "msg_mock1", "output_index": 0, "content_index": 0,
                                                     "text": whole, "logprobs": []}))
        events.append(("response.content_part.done", {"item_id": "msg_mock1", "output_index": 0, "content_index": 0,
                                                      "part": dict(part, text=whole)}))
    events.append(("response.output_item.done", {"output_index": 0, "item": item}))
    events.append(("response.completed", {"response": final}))
    return "text/event-stream", sse([(name, dict(type=name, sequence_number=n, **data))
                                     for n, (name, data) in enumerate(events)])


# The Anthropic side: a Messages API.

def anthropic_reply(body):
    last = body["messages"][-1]
    answered = isinstance(last["content"], list) and any(block.get("type") == "tool_result" for block in last["content"])
    forced = (body.get("tool_choice") or {}).get("name")
    if forced:
        block, pieces = {"type": "tool_use", "id": "toolu_mock2", "name": forced, "input": PERSON}, None
        pieces = [json.dumps(PERSON)[:10], json.dumps(PERSON)[10:]]
    elif body.get("tools") and not answered:
        block = {"type": "tool_use", "id": "toolu_mock1", "name": body["tools"][0]["name"], "input": {"location": "Boston, MA"}}
        pieces = CALL_ARGUMENTS
    else:
        pieces = [WEATHER_ANSWER] if answered else STORY
        block = {"type": "text", "text": "".join(pieces)}
    stop = "tool_use" if block["type"] == "tool_use" else "end_turn"
    thinking = {"type": "thinking", "thinking": "Collies are dogs.", "signature": "EqQBCgIYAhIM"} \
        if body.get("thinking") else None
    message = {"id": "msg_mock1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
               "content": ([thinking] if thinking else []) + [block], "stop_reason": stop, "stop_sequence": None,
               "usage": {"input_tokens": 25, "output_tokens": 11}}
    if not body.get("stream"):
        return "application/json", json.dumps(message).encode()
    start = dict(message, content=[], stop_reason=None, usage={"input_tokens": 25, "output_tokens": 1})
    events = [("message_start", {"type": "message_start", "message": start})]
    index = 0
    if thinking:
        events += [
            ("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
            ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                     "delta": {"type": "thinking_delta", "thinking": thinking["thinking"]}}),
            ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                     "delta": {"type": "signature_delta", "signature": thinking["signature"]}}),
            ("content_block_stop", {"type": "content_block_stop", "index": 0})]
        index = 1
    opened = dict(block, input={}) if block["type"] == "tool_use" else dict(block, text="")
    events.append(("content_block_start", {"type": "content_block_start", "index": index, "content_block": opened}))
    for piece in pieces:
        delta = {"type": "input_json_delta", "partial_json": piece} if block["type"] == "tool_use" else \
            {"type": "text_delta", "text": piece}
        events.append(("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}))
    events += [("content_block_stop", {"type": "content_block_stop", "index": index}),
               ("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                  "usage": {"output_tokens": 11}}),
               ("message_stop", {"type": "message_stop"})]
    return "text/event-stream", sse(events)


class Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    received = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        raw = self.rfile.read(int(self.headers["content-length"]))
        body = json.loads(raw)
        Upstream.received.append({"path": self.path, "raw": raw, "body": body, "headers": {name.lower(): value for name, value in self.headers.items()}})
        if self.path == "/openai/v1/responses":
            content_type, data = openai_reply(body)
        elif self.path == "/anthropic/v1/messages":
            content_type, data = anthropic_reply(body)
        else:
            content_type, data = "application/json", b'{"error":{"message":"no such path","type":"invalid_request_error"}}'
            self.send_response(404)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
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
format = {{ type = "openai", transforms = {{ responses_api = true }} }}
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
            rows = sqlite3.connect(pathlib.Path(directory) / "chronicle.db").execute(
                "SELECT provider, http_status, chat_request, meta, input_tokens, output_tokens "
                "FROM chronicle_events WHERE event_type = 'chronicle_llm_request'"
            ).fetchall()
            RECORDED.extend(rows)


def direct():
    """The SDK pointed straight at the mock's Responses API: what a call without Chronicle gives."""
    return openai.OpenAI(base_url=f"http://127.0.0.1:{UPSTREAM['port']}/openai/v1", api_key="sk-direct", max_retries=0)


TOOLS = [{"type": "function", "name": "get_weather", "description": "The weather in a city", "strict": True,
          "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"],
                         "additionalProperties": False}}]
QUESTION = "What is the weather in Boston?"
PERSON_FORMAT = {"format": {"type": "json_schema", "name": "person", "strict": True, "schema": {
    "type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"], "additionalProperties": False}}}


def create(client, prefix, stream, **arguments):
    """`responses.create`, or `responses.stream` accumulated by the SDK: the final response, and the
    streamed events' types."""
    model = f"{prefix}/gpt-4.1" if prefix else "gpt-4.1"
    if not stream:
        return client.responses.create(model=model, **arguments), []
    with client.responses.stream(model=model, **arguments) as events:
        types = [event.type for event in events]
        return events.get_final_response(), types


# Passthrough: an upstream that serves the Responses API.

def test_passthrough_bytes(gateway):
    """The client's body reaches the upstream with only the model replaced, and the upstream's streamed
    body reaches the client byte for byte, store and previous_response_id included."""
    arguments = dict(input=QUESTION, store=True, previous_response_id="resp_earlier", instructions="Be brief")
    response = gateway.responses.with_raw_response.create(model="oai/gpt-4.1", stream=True, **arguments)
    body = b"".join(response.http_response.iter_bytes())
    sent = Upstream.received[-1]
    assert response.headers.get("x-chronicle-call-id")
    raw = direct().responses.with_raw_response.create(model="gpt-4.1", stream=True, **arguments)
    assert body == b"".join(raw.http_response.iter_bytes())
    assert sent["path"] == "/openai/v1/responses"
    assert sent["raw"] == Upstream.received[-1]["raw"], "the gateway sends the SDK's bytes, model rewritten"
    assert sent["headers"]["authorization"] == "Bearer sk-oai-upstream"
    plain = gateway.responses.with_raw_response.create(model="oai/gpt-4.1", **arguments)
    assert plain.http_response.content == direct().responses.with_raw_response.create(model="gpt-4.1", **arguments).http_response.content


@pytest.mark.parametrize("stream", [False, True])
def test_passthrough_text(gateway, stream):
    response, types = create(gateway, "oai", stream, input=QUESTION)
    expected, direct_types = create(direct(), None, stream, input=QUESTION)
    assert response.model_dump() == expected.model_dump()
    assert types == direct_types
    assert response.output_text == "".join(STORY)


# Both: passthrough and translation give the SDK the same shapes.

@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("prefix", ["oai", "ant"])
def test_text(gateway, prefix, stream):
    response, types = create(gateway, prefix, stream, input=QUESTION, instructions="Be brief", max_output_tokens=200)
    assert response.output_text == "".join(STORY)
    assert response.status == "completed"
    assert response.id.startswith("resp_")
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    if stream:
        assert types[:2] == ["response.created", "response.in_progress"]
        assert types[-1] == "response.completed"
        assert "response.output_text.delta" in types and "response.output_text.done" in types
    if prefix == "ant":
        sent = Upstream.received[-1]["body"]
        assert sent["model"] == "gpt-4.1"
        assert sent["max_tokens"] == 200
        assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": QUESTION}]}] or \
            sent["messages"] == [{"role": "user", "content": QUESTION}]
        assert "Be brief" in json.dumps(sent["system"])


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("prefix", ["oai", "ant"])
def test_function_calling_two_turns(gateway, prefix, stream):
    first, types = create(gateway, prefix, stream, input=QUESTION, tools=TOOLS)
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1
    call = calls[0]
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"location": "Boston, MA"}
    assert call.call_id
    # Strict tools' arguments are parsed by the SDK's accumulator from the final event.
    if stream:
        assert "response.function_call_arguments.delta" in types
        assert call.parsed_arguments == {"location": "Boston, MA"}
    history = [{"role": "user", "content": QUESTION}] + [item.model_dump(exclude_none=True) for item in first.output] + [
        {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 22C"}]
    second, _ = create(gateway, prefix, stream, input=history, tools=TOOLS)
    assert second.output_text == WEATHER_ANSWER
    if prefix == "ant":
        sent = Upstream.received[-1]["body"]
        assistant = sent["messages"][1]
        assert assistant["role"] == "assistant"
        assert assistant["content"][-1]["type"] == "tool_use" and assistant["content"][-1]["id"] == call.call_id
        result = sent["messages"][2]["content"][0]
        assert result["type"] == "tool_result" and result["tool_use_id"] == call.call_id


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("prefix", ["oai", "ant"])
def test_structured_output(gateway, prefix, stream):
    response, _ = create(gateway, prefix, stream, input="Who is the dog?", text=PERSON_FORMAT)
    assert json.loads(response.output_text) == PERSON
    assert [item.type for item in response.output] == ["message"]
    if prefix == "ant":
        sent = Upstream.received[-1]["body"]
        assert sent["tool_choice"] == {"type": "tool", "name": "chronicle_structured_output"}
        assert sent["tools"][0]["input_schema"] == PERSON_FORMAT["format"]["schema"]


@pytest.mark.parametrize("stream", [False, True])
def test_reasoning_round_trip(gateway, stream):
    """Claude's signed thinking comes back as a reasoning item, and goes back to Claude as signed thinking
    on the next turn (which extended thinking with tools needs)."""
    first, types = create(gateway, "ant", stream, input=QUESTION, tools=TOOLS, reasoning={"effort": "low"},
                          max_output_tokens=4000)
    assert Upstream.received[-1]["body"]["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert [item.type for item in first.output] == ["reasoning", "function_call"]
    assert first.output[0].content[0].text == "Collies are dogs."
    assert first.output[0].encrypted_content
    if stream:
        assert "response.reasoning_text.delta" in types
    call = first.output[1]
    history = [{"role": "user", "content": QUESTION}] + [item.model_dump(exclude_none=True) for item in first.output] + [
        {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 22C"}]
    second, _ = create(gateway, "ant", stream, input=history, tools=TOOLS, reasoning={"effort": "low"},
                       max_output_tokens=4000)
    assert second.output_text == WEATHER_ANSWER
    assistant = Upstream.received[-1]["body"]["messages"][1]
    assert assistant["content"][0] == {"type": "thinking", "thinking": "Collies are dogs.", "signature": "EqQBCgIYAhIM"}
    assert assistant["content"][1]["type"] == "tool_use"


# Refusals towards a provider without state or built-in tools.

@pytest.mark.parametrize("arguments, param", [
    ({"previous_response_id": "resp_1"}, "previous_response_id"),
    ({"store": True}, "store"),
    ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]}, "tools[0].type"),
])
def test_refused_by_name(gateway, arguments, param):
    with pytest.raises(openai.BadRequestError) as raised:
        gateway.responses.create(model="ant/claude", input="hi", **arguments)
    assert raised.value.status_code == 400
    assert raised.value.body["param"] == param
    assert raised.value.body["type"] == "invalid_request_error"
    assert raised.value.response.headers.get("x-chronicle-call-id")


def teardown_module(module):
    """After the server stopped: each of the 28 calls above is one chronicle_events row that names the API
    the client spoke, with the body as sent and the usage; the refusals are recorded with their 400."""
    assert len(RECORDED) == 28, RECORDED
    for provider, status, request, meta, input_tokens, output_tokens in RECORDED:
        assert json.loads(meta)["api"] == "openai_responses"
        assert json.loads(request)["model"]
        if status == 200:
            assert input_tokens and output_tokens
    assert {row[0] for row in RECORDED} == {"oai", "ant"}
    assert sum(1 for row in RECORDED if row[1] == 400) == 4
    assert not any("sk-oai-upstream" in (row[2] or "") for row in RECORDED)
