"""End-to-end: `embeddings.create` of the official OpenAI Python SDK against a running `chronicle serve`,
through an OpenAI-format upstream (passthrough) and a Gemini-format one (translated by the gateway).

The SDK asks for base64 unless told otherwise and decodes it itself, so a string input without
`encoding_format` checks the gateway's base64 (little-endian float32) as much as the upstream's.
"""
import base64
import json
import pathlib
import re
import sqlite3
import struct
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest

from chronicle_server import free_port, start_chronicle


def vector(text):
    """The vector both upstreams answer for `text`: exact float32 values, so equality is exact."""
    return [float(len(text)), 0.5, -0.25, 1.0 / 1024]


def float32(values):
    return list(struct.unpack(f"<{len(values)}f", struct.pack(f"<{len(values)}f", *values)))


class Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    received = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        Upstream.received.append({"path": self.path, "body": body})
        if self.path == "/v1/embeddings":
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = []
            for index, text in enumerate(texts):
                values = vector(text)
                if body.get("encoding_format") == "base64":
                    values = base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
                data.append({"object": "embedding", "index": index, "embedding": values})
            answer = {"object": "list", "data": data, "model": body["model"],
                      "usage": {"prompt_tokens": 3 * len(texts), "total_tokens": 3 * len(texts)}}
        elif re.fullmatch(r"/v1beta/models/[^/:]+:embedContent", self.path):
            answer = {"embedding": {"values": vector(body["content"]["parts"][0]["text"])}}
        elif re.fullmatch(r"/v1beta/models/[^/:]+:batchEmbedContents", self.path):
            answer = {"embeddings": [{"values": vector(item["content"]["parts"][0]["text"])}
                                     for item in body["requests"]]}
        else:
            return self.reply(404, {"error": {"message": f"no route {self.path}"}})
        return self.reply(200, answer)

    def reply(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


RECORDED = []


@pytest.fixture(scope="module")
def client():
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        config = pathlib.Path(directory) / "chronicle.toml"
        config.write_text(
            f"""
[[providers]]
name = "oai"
url = "http://127.0.0.1:{upstream.server_port}/v1/chat/completions"
prefix = "oai/"
api_key = "sk-upstream"
format = "openai"

[[providers]]
name = "gem"
url = "http://127.0.0.1:{upstream.server_port}/v1beta"
prefix = "gem/"
api_key = "g-upstream"
format = "gemini"
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
                "SELECT provider, input_tokens, meta, chat_request, chat_response FROM chronicle_events"
            ).fetchall()
            RECORDED.extend(rows)


MODELS = ["oai/text-embedding-3-small", "gem/text-embedding-004"]


@pytest.mark.parametrize("model", MODELS)
def test_string_input_sdk_decodes_base64(client, model):
    # Without `encoding_format` the SDK asks for base64 and decodes it into floats itself.
    response = client.embeddings.create(model=model, input="hello")
    assert response.object == "list"
    assert len(response.data) == 1
    assert response.data[0].index == 0
    assert response.data[0].embedding == float32(vector("hello"))
    assert Upstream.received[-1]["body"].get("encoding_format") in (None, "base64")


@pytest.mark.parametrize("model", MODELS)
def test_list_input_float(client, model):
    texts = ["first text", "the second", "3"]
    response = client.embeddings.create(model=model, input=texts, encoding_format="float")
    assert [item.index for item in response.data] == [0, 1, 2]
    assert [item.embedding for item in response.data] == [float32(vector(text)) for text in texts]
    if model.startswith("oai/"):
        assert response.usage.prompt_tokens == 9
        assert Upstream.received[-1]["body"]["model"] == "text-embedding-3-small"
    else:
        assert Upstream.received[-1]["path"] == "/v1beta/models/text-embedding-004:batchEmbedContents"


@pytest.mark.parametrize("model", MODELS)
def test_explicit_base64(client, model):
    # Asked for explicitly, base64 comes back as the string: little-endian float32, as OpenAI sends it.
    response = client.embeddings.create(model=model, input=["ab", "cde"], encoding_format="base64")
    for item, text in zip(response.data, ["ab", "cde"]):
        assert isinstance(item.embedding, str)
        raw = base64.b64decode(item.embedding)
        assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == float32(vector(text))


def test_refusal_is_a_clear_400(client):
    with pytest.raises(openai.BadRequestError) as error:
        client.embeddings.create(model="gem/text-embedding-004", input=[[1, 2, 3]], encoding_format="float")
    assert "takes text only" in str(error.value)


def teardown_module(module):
    """After the server stopped: six answered calls and the refusal are in the database, each with its
    input and usage, and with the count and dimension of its vectors instead of them."""
    assert len(RECORDED) == 7, RECORDED
    answered = 0
    for provider, input_tokens, meta, request, response in RECORDED:
        assert json.loads(meta)["api"] == "openai_embeddings"
        assert "input" in json.loads(request)
        stored = json.loads(response)
        if stored is None:
            continue
        answered += 1
        assert stored["data"]["dimensions"] == 4
        assert '"embedding"' not in response
        if provider == "oai":
            assert input_tokens is not None
    assert answered == 6
