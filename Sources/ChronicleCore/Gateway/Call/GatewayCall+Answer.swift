extension GatewayCall {
    /// The answer as it is relayed, kept for the record: an OpenAI-format upstream's chunks (or complete
    /// response), or an Anthropic-format upstream's answer to an Anthropic client, as their bytes, with
    /// only id, model and usage read from them, so that the request path
    /// decodes nothing (``CallLogRecord/relayedResponse`` decodes them later, off the request path);
    /// anything else folded as it arrives. Plain data, no I/O.
    struct Answer: Sendable {
        private var collector = ResponseCollector()
        /// Relayed chunks, as their bytes.
        private var relayedChunks: [[UInt8]] = []
        private var relayedSingle: [UInt8]?
        /// What was read from the relayed answer: id, model, usage.
        private var relayedSummary: ChatResponse?
        /// Set once a chunk arrives that is not a summary: from then on every chunk is folded as it comes.
        private var foldsEveryChunk = false
        private(set) var responseMeta: JSONValue?
        /// An Anthropic answer relayed as the upstream sent it: its bytes, and what was read from them.
        private var relayedMessages: RelayedAnswerBytes<AnthropicWireSummary>?
        /// An embeddings answer: what is recorded of it, and its body when vectors are kept.
        private var embeddings: (summary: EmbeddingsSummary, body: [UInt8]?)?
        /// Whether an embeddings answer's vectors are kept for the record (`log_embedding_vectors`).
        var keepsEmbeddingVectors = false
        /// A Responses API answer relayed as the upstream sent it: its bytes, and what was read from them.
        private var relayedResponses: RelayedAnswerBytes<ResponsesWireSummary>?

        /// Adds one event of the answer.
        mutating func add(_ event: ChatStreamEvent) {
            switch event {
            case .chunk(let chunk) where chunk.isSummary && !foldsEveryChunk:
                keepRelayed(chunk)
            case .chunk(let chunk):
                foldRelayedChunks()
                collector.add(chunk)
            case .single(let response) where response.isSummary:
                relayedSingle = response.wireJSON
                relayedSummary = response
            case .single(let response):
                collector.add(response)
            case .responseInfo(let info):
                responseMeta = info.meta
            case .relayedMessages(let part):
                relayedMessages = relayedMessages ?? RelayedAnswerBytes()
                relayedMessages?.add(part)
            case .embeddings(let answer):
                embeddings = (answer.summary, keepsEmbeddingVectors ? Array(answer.body.readableBytesView) : nil)
            case .relayedResponses(let part):
                relayedResponses = relayedResponses ?? RelayedAnswerBytes()
                relayedResponses?.add(part)
            case .requestInfo:
                break
            }
        }

        /// Writes what arrived into `record`: response (bytes or folded), chunk count and metadata.
        func fill(_ record: inout CallLogRecord) {
            if collector.chunkCount > 0 { record.response = collector.collected }
            record.chunkCount = collector.chunkCount
            if let single = relayedSingle {
                record.setRelayed(.response(single), summary: relayedSummary)
                record.chunkCount = 1
            } else if !relayedChunks.isEmpty {
                record.setRelayed(.chunks(relayedChunks), summary: relayedSummary)
                record.chunkCount = relayedChunks.count
            }
            if let relayed = relayedMessages {
                record.setRelayed(.anthropicMessages(relayed.bytes, isEventStream: relayed.isEventStream),
                                  summary: relayed.chatSummary)
                record.chunkCount = relayed.parts
            }
            if let embeddings {
                record.setRelayed(.embeddings(embeddings.summary, body: embeddings.body),
                                  summary: ChatResponse(model: embeddings.summary.model, usage: embeddings.summary.usage))
                record.chunkCount = 1
            }
            if let relayed = relayedResponses {
                record.setRelayed(.openAIResponses(relayed.bytes, isEventStream: relayed.isEventStream),
                                  summary: relayed.chatSummary)
                record.chunkCount = relayed.parts
            }
            if let responseMeta { record.responseMeta = responseMeta }
        }

        /// Keeps a relayed chunk's bytes and merges what was read from it into the summary.
        private mutating func keepRelayed(_ chunk: ChatChunk) {
            guard let bytes = chunk.wireJSON else { return }
            relayedChunks.append(bytes)
            if relayedSummary == nil {
                var summary = ChatResponse(id: chunk.id, created: chunk.created, model: chunk.model)
                summary.isSummary = true
                relayedSummary = summary
            }
            if let usage = chunk.usage {
                if relayedSummary?.usage == nil { relayedSummary?.usage = Usage() }
                relayedSummary?.usage?.merge(usage)
            }
        }

        /// Folds the relayed chunks kept so far, when a chunk that is not a summary joins them.
        private mutating func foldRelayedChunks() {
            guard !foldsEveryChunk else { return }
            foldsEveryChunk = true
            for bytes in relayedChunks {
                guard let chunk = try? JSONCoding.decode(ChatChunk.self, from: bytes) else { continue }
                collector.add(chunk)
            }
            relayedChunks = []
            relayedSummary = nil
        }
    }
}
