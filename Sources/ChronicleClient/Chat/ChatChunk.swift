import Foundation

/// One chunk of a streamed answer. The first carries Chronicle's ``meta``; the last one carries the
/// ``usage`` (the client always asks for it).
public struct ChatChunk: Sendable, Hashable, Decodable {
    /// The provider's id for the completion (the same on every chunk).
    public var id: String?
    /// When the provider made it (Unix seconds).
    public var created: Int64?
    /// The model as the provider reported it.
    public var model: String?
    /// The choices' deltas (empty on the final usage chunk).
    public var choices: [ChunkChoice]
    /// Token counts, on the final chunk.
    public var usage: Usage?
    /// Chronicle's `meta`, on the first chunk.
    public var meta: CallMeta?

    /// The text this chunk adds to the first choice.
    public var text: String? { choices.first?.delta.content }

    enum CodingKeys: String, CodingKey {
        case id, created, model, choices, usage, meta
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decodeIfPresent(String.self, forKey: .id)
        created = try c.decodeIfPresent(Int64.self, forKey: .created)
        model = try c.decodeIfPresent(String.self, forKey: .model)
        choices = try c.decodeIfPresent([ChunkChoice].self, forKey: .choices) ?? []
        usage = try c.decodeIfPresent(Usage.self, forKey: .usage)
        meta = try c.decodeIfPresent(CallMeta.self, forKey: .meta)
    }
}

/// One choice's part of a chunk.
public struct ChunkChoice: Sendable, Hashable, Decodable {
    /// Which choice (or, on a tool call piece, which call) this is.
    public var index: Int
    /// What this chunk adds.
    public var delta: ChatDelta
    /// Why the choice ended, on its last chunk.
    public var finishReason: String?

    enum CodingKeys: String, CodingKey {
        case index, delta
        case finishReason = "finish_reason"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        index = try c.decodeIfPresent(Int.self, forKey: .index) ?? 0
        delta = try c.decodeIfPresent(ChatDelta.self, forKey: .delta) ?? ChatDelta()
        finishReason = try c.decodeIfPresent(String.self, forKey: .finishReason)
    }
}

/// What a chunk adds to a message.
public struct ChatDelta: Sendable, Hashable, Decodable {
    /// The role, on the first chunk.
    public var role: Role?
    /// Text to append.
    public var content: String?
    /// Pieces of tool calls.
    public var toolCalls: [ToolCallDelta]?

    public init(role: Role? = nil, content: String? = nil, toolCalls: [ToolCallDelta]? = nil) {
        self.role = role
        self.content = content
        self.toolCalls = toolCalls
    }

    enum CodingKeys: String, CodingKey {
        case role, content
        case toolCalls = "tool_calls"
    }
}

/// A piece of a tool call: the first piece of a call has its id and name, later ones add to the arguments.
public struct ToolCallDelta: Sendable, Hashable, Decodable {
    /// Which choice (or, on a tool call piece, which call) this is.
    public var index: Int
    /// The call's id, on its first piece.
    public var id: String?
    /// The function's name, on its first piece.
    public var name: String?
    /// Text to append to the arguments.
    public var arguments: String?

    enum CodingKeys: String, CodingKey { case index, id, function }
    enum FunctionKeys: String, CodingKey { case name, arguments }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        index = try c.decodeIfPresent(Int.self, forKey: .index) ?? 0
        id = try c.decodeIfPresent(String.self, forKey: .id)
        if c.contains(.function), try !c.decodeNil(forKey: .function) {
            let function = try c.nestedContainer(keyedBy: FunctionKeys.self, forKey: .function)
            name = try function.decodeIfPresent(String.self, forKey: .name)
            arguments = try function.decodeIfPresent(String.self, forKey: .arguments)
        }
    }
}

/// The chunks of a streamed answer, from ``ChronicleClient/streamChat(_:)``.
///
/// The request is sent when iteration starts; an error before the first chunk (a bad request, every
/// provider failing) is thrown by the first `next()`. A failure mid-stream is thrown as a ``ChronicleError``.
///
/// ```swift
/// for try await chunk in client.streamChat(request) {
///     print(chunk.text ?? "", terminator: "")
///     if let usage = chunk.usage { print("\n\(usage.totalTokens ?? 0) tokens") }
/// }
/// ```
public struct ChatStream: AsyncSequence, Sendable {
    public typealias Element = ChatChunk

    let open: @Sendable () async throws -> TransportStream

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(open: open)
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let open: @Sendable () async throws -> TransportStream
        var events: AsyncThrowingStream<[UInt8], any Error>.AsyncIterator?
        var callID: UUID?

        public mutating func next() async throws -> ChatChunk? {
            var events: AsyncThrowingStream<[UInt8], any Error>.AsyncIterator
            if let opened = self.events {
                events = opened
            } else {
                let stream = try await open()
                callID = stream.callID
                events = stream.events.makeAsyncIterator()
            }
            defer { self.events = events }
            guard let bytes = try await events.next() else { return nil }
            do {
                return try JSONDecoder().decode(ChatChunk.self, from: Data(bytes))
            } catch {
                throw ChronicleError(status: nil, kind: "invalid_response",
                                     message: "A stream chunk could not be read: \(error)", callID: callID)
            }
        }
    }
}
