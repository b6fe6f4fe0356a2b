/// An OpenAI Responses API request decoded into types, for providers that translate it into a chat
/// request. Members the translation does not read are kept in ``members`` (the whole body), so that the
/// answer can echo them as OpenAI does and the refusals can name them.
public struct ResponsesRequest: Sendable, Hashable {
    public var model: String
    /// `input`, a string being one user message.
    public var input: [ResponsesInputItem]
    /// `instructions`: a system message ahead of the input.
    public var instructions: String?
    /// Function tools, in the order sent.
    public var tools: [FunctionDefinition]
    public var toolChoice: JSONValue?
    public var maxOutputTokens: Int?
    public var temperature: Double?
    public var topP: Double?
    /// `text.format`: `text`, `json_object` or `json_schema` (with `name`, `schema`, `strict`).
    public var textFormat: JSONValue?
    /// `reasoning.effort`: `minimal`, `low`, `medium` or `high`.
    public var reasoningEffort: String?
    public var parallelToolCalls: Bool?
    public var stream: Bool
    public var user: String?
    /// The whole body as sent.
    public var members: [String: JSONValue]

    public init(model: String, input: [ResponsesInputItem], members: [String: JSONValue] = [:]) {
        self.model = model
        self.input = input
        self.tools = []
        self.stream = false
        self.members = members
    }
}

/// One item of a Responses request's `input`.
public enum ResponsesInputItem: Sendable, Hashable {
    /// A message: `user`, `system`, `developer` or `assistant`, with its text and image parts.
    case message(role: String, content: [ResponsesInputPart])
    /// A function call the model made earlier: `call_id` ties it to its output.
    case functionCall(callID: String, name: String, arguments: String)
    /// A function's result, sent back to the model.
    case functionCallOutput(callID: String, output: String)
    /// Reasoning from an earlier translated answer, with the provider's signature (see
    /// ``ResponsesStreamTranslator/signaturePrefix``): sent back as signed thinking where the provider
    /// takes it.
    case reasoning(text: String, signature: String)
}

/// One content part of an input message.
public enum ResponsesInputPart: Sendable, Hashable {
    /// `input_text`, or an earlier answer's `output_text` / `refusal` in an assistant message.
    case text(String)
    /// `input_image` by URL (an `https:` or `data:` URL), with its `detail` when given.
    case image(url: String, detail: String?)
}
