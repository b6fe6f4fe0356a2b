import NIOCore
import NIOHTTP1

/// Every response body the mock can send, encoded once at startup so a request costs no JSON work.
/// Shapes are copied from the recorded provider fixtures in Tests/Fixtures/providers.
struct MockResponses: Sendable {
    let openAIJSON: ByteBuffer
    let openAIJSONHeaders: HTTPHeaders
    let anthropicJSON: ByteBuffer
    let anthropicJSONHeaders: HTTPHeaders
    let healthz: ByteBuffer
    let healthzHeaders: HTTPHeaders
    let notFound: ByteBuffer
    let notFoundHeaders: HTTPHeaders
    /// No content-length: NIO's encoder then uses chunked transfer encoding, one chunk per SSE event.
    let sseHeaders: HTTPHeaders

    /// OpenAI stream: a role chunk, content chunks cycling through `openAIContent`, a finish chunk, usage, [DONE].
    let openAIRole: ByteBuffer
    let openAIContent: [ByteBuffer]
    let openAIFinish: ByteBuffer
    let openAIDone: ByteBuffer

    /// Anthropic stream: message_start, content_block_start, deltas cycling through `anthropicDeltas`,
    /// content_block_stop, message_delta (usage), message_stop.
    let anthropicMessageStart: ByteBuffer
    let anthropicBlockStart: ByteBuffer
    let anthropicDeltas: [ByteBuffer]
    let anthropicBlockStop: ByteBuffer
    let anthropicMessageStop: ByteBuffer

    static let tokens = ["L", "ass", "ie", " was", " a", " fictional", " Coll", "ie", " dog", " that",
                         " originated", " in", " a", " short", " story", "."]

    init() {
        let alloc = ByteBufferAllocator()
        func buffer(_ s: String) -> ByteBuffer { alloc.buffer(string: s) }
        func jsonHeaders(_ body: ByteBuffer) -> HTTPHeaders {
            ["content-type": "application/json", "content-length": String(body.readableBytes)]
        }

        let openAIContentText = "Lassie was a fictional character, a Rough Collie dog, who was featured in a long-running series of movies, TV shows, and books. The character first appeared in a short story by Eric Knight in 1938 and became popular through the classic television series \\\"Lassie\\\" which aired from 1954 to 1973. Lassie is known for her loyalty, bravery, and intelligence, and is considered one of the most iconic dogs in popular culture."
        openAIJSON = buffer(#"{"id":"chatcmpl-9VE2R0BxEW9IIrOIcV0sXD8U2YwQg","object":"chat.completion","created":1717229159,"model":"gpt-3.5-turbo-0125","choices":[{"index":0,"message":{"role":"assistant","content":""# + openAIContentText + #""},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":15,"completion_tokens":97,"total_tokens":112},"system_fingerprint":null}"#)
        openAIJSONHeaders = jsonHeaders(openAIJSON)

        let anthropicText = "Lassie was a fictional dog character that appeared in a series of Hollywood films, television shows, and books starting in the 1940s.\\n\\nThe original Lassie was a female Rough Collie owned by a trainer named Rudd Weatherwax. Lassie first appeared in the 1943 film Lassie Come Home, starring Roddy McDowall."
        anthropicJSON = buffer(#"{"id":"msg_014BoUBuFM9xgAdkJGRmxtC2","type":"message","role":"assistant","model":"claude-3-haiku-20240307","content":[{"type":"text","text":""# + anthropicText + #""}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":16,"output_tokens":217}}"#)
        anthropicJSONHeaders = jsonHeaders(anthropicJSON)

        healthz = buffer(#"{"status":"ok"}"#)
        healthzHeaders = jsonHeaders(healthz)
        notFound = buffer(#"{"error":{"message":"not found","type":"invalid_request_error"}}"#)
        notFoundHeaders = jsonHeaders(notFound)
        sseHeaders = ["content-type": "text/event-stream", "cache-control": "no-cache"]

        let chunkPrefix = #"data: {"id":"chatcmpl-9VE2ThTTpfR3Vpv7iUED2Byy3GxLF","object":"chat.completion.chunk","created":1717229161,"model":"gpt-3.5-turbo-0125","system_fingerprint":null,"choices":["#
        openAIRole = buffer(chunkPrefix + #"{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}"# + "\n\n")
        openAIContent = Self.tokens.map {
            buffer(chunkPrefix + #"{"index":0,"delta":{"content":""# + $0 + #""},"logprobs":null,"finish_reason":null}],"usage":null}"# + "\n\n")
        }
        openAIFinish = buffer(chunkPrefix + #"{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}"# + "\n\n")
        openAIDone = buffer("data: [DONE]\n\n")

        anthropicMessageStart = buffer(
            "event: message_start\n" +
            #"data: {"type":"message_start","message":{"id":"msg_016iNTNT8hQAVRV3vRKhwz2h","type":"message","role":"assistant","model":"claude-3-haiku-20240307","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":16,"output_tokens":2}}}"# + "\n\n")
        anthropicBlockStart = buffer(
            "event: content_block_start\n" +
            #"data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"# + "\n\n")
        anthropicDeltas = Self.tokens.map {
            buffer("event: content_block_delta\n" +
                   #"data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":""# + $0 + #""}}"# + "\n\n")
        }
        anthropicBlockStop = buffer("event: content_block_stop\n" + #"data: {"type":"content_block_stop","index":0}"# + "\n\n")
        anthropicMessageStop = buffer("event: message_stop\n" + #"data: {"type":"message_stop"}"# + "\n\n")
    }

    /// How many SSE events a stream with `chunks` content events has in total.
    func eventCount(anthropic: Bool, chunks: Int) -> Int {
        anthropic ? chunks + 5 : chunks + 4
    }

    /// The `index`th SSE event of a stream; the usage events count the tokens actually streamed,
    /// so a gateway that logs usage sees real numbers.
    func event(anthropic: Bool, chunks: Int, index: Int) -> ByteBuffer {
        if anthropic {
            switch index {
            case 0: return anthropicMessageStart
            case 1: return anthropicBlockStart
            case 2..<(chunks + 2): return anthropicDeltas[(index - 2) % anthropicDeltas.count]
            case chunks + 2: return anthropicBlockStop
            case chunks + 3:
                return ByteBufferAllocator().buffer(string: "event: message_delta\n" +
                    #"data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":\#(chunks)}}"# + "\n\n")
            default: return anthropicMessageStop
            }
        }
        switch index {
        case 0: return openAIRole
        case 1..<(chunks + 1): return openAIContent[(index - 1) % openAIContent.count]
        case chunks + 1: return openAIFinish
        case chunks + 2:
            return ByteBufferAllocator().buffer(string: #"data: {"id":"chatcmpl-9VE2ThTTpfR3Vpv7iUED2Byy3GxLF","object":"chat.completion.chunk","created":1717229161,"model":"gpt-3.5-turbo-0125","system_fingerprint":null,"choices":[],"usage":{"prompt_tokens":15,"completion_tokens":\#(chunks),"total_tokens":\#(15 + chunks)}}"# + "\n\n")
        default: return openAIDone
        }
    }
}
