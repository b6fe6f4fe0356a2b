/// Turns the gateway's internal chunks into an Anthropic Messages API event stream, for clients that speak
/// Anthropic's format to a provider that does not. It does no I/O: each call returns the events to write,
/// in order (``AnthropicStreamEvent/serverSentEvent()`` gives their bytes).
///
/// The events form the sequence Anthropic's SDKs accumulate: `message_start` first; then each content
/// block opened with `content_block_start` at the next index, filled with deltas and closed with
/// `content_block_stop` before the next one opens; then `message_delta` with the stop reason and the
/// usage, which comes from whichever chunk carried it (often a usage-only chunk after the finish reason);
/// then `message_stop`. A failure after the start ends the stream with an `error` event.
///
/// ```swift
/// var translator = AnthropicStreamTranslator(requestedModel: "gpt-4o")
/// for chunk in chunks { write(translator.receive(chunk)) }
/// write(translator.finish())
/// ```
public struct AnthropicStreamTranslator: Sendable {
    /// Where the stream is.
    public enum State: Sendable, Hashable {
        /// Nothing written yet: a failure now can still be an HTTP error status.
        case idle
        /// `message_start` is written.
        case streaming
        /// `message_stop` or `error` is written; nothing follows.
        case finished
    }

    /// What the open content block holds.
    enum Block: Sendable, Hashable {
        case text
        /// A thinking block; once signed, more thinking opens a new block.
        case thinking(signed: Bool)
        /// The tool call with this ordinal.
        case tool(Int)
    }

    /// Where the stream is.
    public private(set) var state = State.idle
    let requestedModel: String
    /// The open block and its index.
    var open: (index: Int, block: Block)?
    var nextIndex = 0
    /// Tool-call ordinal → its block's index.
    var toolBlocks: [Int: Int] = [:]
    var lastToolOrdinal: Int?
    var stop: (reason: String, sequence: String?)?
    var usage: Usage?

    /// - Parameter requestedModel: the model named in the answer when the chunks name none.
    public init(requestedModel: String) {
        self.requestedModel = requestedModel
    }

    /// The events for one chunk. Only the first choice is translated: Anthropic answers have one. A
    /// relayed chunk (a summary of an upstream's bytes) is decoded first; one that does not decode ends the
    /// stream with an error event.
    public mutating func receive(_ relayed: ChatChunk) -> [AnthropicStreamEvent] {
        guard state != .finished else { return [] }
        guard let chunk = try? relayed.decoded() else {
            var events: [AnthropicStreamEvent] = []
            start(id: relayed.id, model: relayed.model, into: &events)
            return events + fail(AnthropicError(.api, message: "Could not read a chunk of the provider's stream"))
        }
        var events: [AnthropicStreamEvent] = []
        if let chunkUsage = chunk.usage {
            if usage == nil { usage = chunkUsage } else { usage?.merge(chunkUsage) }
        }
        start(id: chunk.id, model: chunk.model, into: &events)
        guard let choice = chunk.choices.first(where: { $0.index == 0 }) else { return events }
        let delta = choice.delta

        if let blocks = delta.thinkingBlocks, !blocks.isEmpty {
            for block in blocks { thinking(block, into: &events) }
        } else if let reasoning = delta.reasoningContent, !reasoning.isEmpty {
            let index = ensureOpen(.thinking(signed: false), into: &events)
            events.append(.contentBlockDelta(index: index, delta: .thinking(reasoning)))
        }
        if let text = delta.content?.text, !text.isEmpty {
            let index = ensureOpen(.text, into: &events)
            events.append(.contentBlockDelta(index: index, delta: .text(text)))
        }
        for call in delta.toolCalls ?? [] {
            toolCall(call, into: &events)
        }
        if let finish = choice.finishReason {
            stop = AnthropicIngress.stopReason(finish, details: choice.unknownFields, calledTools: !toolBlocks.isEmpty)
        }
        return events
    }

    /// The closing events, once the internal stream has ended: the open block's stop, `message_delta`
    /// and `message_stop`.
    public mutating func finish() -> [AnthropicStreamEvent] {
        guard state != .finished else { return [] }
        var events: [AnthropicStreamEvent] = []
        start(id: nil, model: nil, into: &events)
        close(into: &events)
        let stop = stop ?? (toolBlocks.isEmpty ? ("end_turn", nil) : ("tool_use", nil))
        events.append(.messageDelta(stopReason: stop.reason, stopSequence: stop.sequence,
                                    usage: AnthropicIngress.usage(usage)))
        events.append(.messageStop)
        state = .finished
        return events
    }

    /// The event for a failure: an `error` event, after which nothing more is written. Before anything was
    /// written (``state`` is `idle`), the caller should rather answer with the error's HTTP status.
    public mutating func fail(_ error: AnthropicError) -> [AnthropicStreamEvent] {
        guard state != .finished else { return [] }
        state = .finished
        return [.error(error)]
    }

    // MARK: Steps

    /// `message_start`, the first time anything is written.
    mutating func start(id: String?, model: String?, into events: inout [AnthropicStreamEvent]) {
        guard state == .idle else { return }
        state = .streaming
        var startUsage = AnthropicIngress.usage(usage)
        startUsage.outputTokens = usage?.completionTokens ?? 0
        events.append(.messageStart(AnthropicMessagesResponse(
            id: AnthropicIngress.messageID(id), model: model ?? requestedModel, usage: startUsage)))
    }

    /// The index of an open block of `block`'s kind, opening one (and closing the open one) if needed.
    mutating func ensureOpen(_ block: Block, into events: inout [AnthropicStreamEvent]) -> Int {
        if let open, open.block == block { return open.index }
        close(into: &events)
        let index = nextIndex
        nextIndex += 1
        open = (index, block)
        switch block {
        case .text:
            events.append(.contentBlockStart(index: index, block: .text(.init(text: ""))))
        case .thinking:
            events.append(.contentBlockStart(index: index, block: .thinking(
                ThinkingBlock(fields: ["type": "thinking", "thinking": "", "signature": ""]))))
        case .tool:
            // Opened by toolCall(_:into:), which knows the id and name.
            break
        }
        return index
    }

    mutating func close(into events: inout [AnthropicStreamEvent]) {
        guard let open else { return }
        events.append(.contentBlockStop(index: open.index))
        self.open = nil
    }

    /// A thinking fragment: its text, then its signature, which ends the block. A redacted block is whole.
    mutating func thinking(_ block: ThinkingBlock, into events: inout [AnthropicStreamEvent]) {
        guard block.type == "thinking" else {
            close(into: &events)
            let index = nextIndex
            nextIndex += 1
            events.append(.contentBlockStart(index: index, block: .thinking(block)))
            events.append(.contentBlockStop(index: index))
            return
        }
        if let text = block.thinking, !text.isEmpty {
            let index = ensureOpen(.thinking(signed: false), into: &events)
            events.append(.contentBlockDelta(index: index, delta: .thinking(text)))
        }
        if let signature = block.signature, !signature.isEmpty {
            let index = ensureOpen(.thinking(signed: false), into: &events)
            events.append(.contentBlockDelta(index: index, delta: .signature(signature)))
            open = (index, .thinking(signed: true))
        }
    }

    /// A tool-call fragment: the first one for a call opens its block; arguments are input JSON deltas.
    mutating func toolCall(_ call: ToolCall, into events: inout [AnthropicStreamEvent]) {
        let ordinal = call.index ?? (call.id != nil || lastToolOrdinal == nil ? toolBlocks.count : lastToolOrdinal ?? 0)
        lastToolOrdinal = ordinal
        let index: Int
        if let known = toolBlocks[ordinal] {
            // A fragment for a call whose block was closed (another block came between) is still written
            // at that call's index: the SDKs add deltas to the block by index, so the input stays whole.
            index = known
        } else {
            close(into: &events)
            index = nextIndex
            nextIndex += 1
            toolBlocks[ordinal] = index
            open = (index, .tool(ordinal))
            events.append(.contentBlockStart(index: index, block: .toolUse(.init(
                id: AnthropicIngress.toolUseID(call.id), name: call.function.name ?? "", input: [:]))))
        }
        if let arguments = call.function.arguments, !arguments.isEmpty {
            events.append(.contentBlockDelta(index: index, delta: .inputJSON(arguments)))
        }
    }
}
