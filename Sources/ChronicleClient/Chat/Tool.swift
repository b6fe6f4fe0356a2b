import Foundation

/// A function the model may call.
///
/// ```swift
/// let weather = Tool.function(
///     "get_weather", description: "The weather in a city",
///     parameters: ["type": "object", "properties": ["city": ["type": "string"]], "required": ["city"]])
/// ```
public struct Tool: Sendable, Hashable, Codable {
    /// Always `function`.
    public var type: String
    public var function: FunctionDefinition

    public init(function: FunctionDefinition) {
        type = "function"
        self.function = function
    }

    /// A function tool with a JSON Schema for its arguments.
    public static func function(_ name: String, description: String? = nil, parameters: JSONValue? = nil,
                                strict: Bool? = nil) -> Tool {
        Tool(function: FunctionDefinition(name: name, description: description, parameters: parameters, strict: strict))
    }
}

/// A function's name, description and JSON Schema parameters.
public struct FunctionDefinition: Sendable, Hashable, Codable {
    public var name: String
    public var description: String?
    /// A JSON Schema for the function's arguments.
    public var parameters: JSONValue?
    /// Whether the arguments must match the schema exactly (OpenAI).
    public var strict: Bool?

    public init(name: String, description: String? = nil, parameters: JSONValue? = nil, strict: Bool? = nil) {
        self.name = name
        self.description = description
        self.parameters = parameters
        self.strict = strict
    }
}

/// A call the model asks for: which function, with which arguments (a JSON string).
public struct ToolCall: Sendable, Hashable, Codable {
    /// The call's id, which the tool's answer names.
    public var id: String
    /// Always `function`.
    public var type: String
    public var function: FunctionCall

    public init(id: String, name: String, arguments: String) {
        self.id = id
        type = "function"
        function = FunctionCall(name: name, arguments: arguments)
    }

    /// The arguments decoded as `T`.
    public func arguments<T: Decodable>(as type: T.Type = T.self) throws -> T {
        try JSONDecoder().decode(type, from: Data(function.arguments.utf8))
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decodeIfPresent(String.self, forKey: .id) ?? ""
        type = try c.decodeIfPresent(String.self, forKey: .type) ?? "function"
        function = try c.decode(FunctionCall.self, forKey: .function)
    }
}

/// The function a tool call names and its arguments as the model wrote them (JSON text).
public struct FunctionCall: Sendable, Hashable, Codable {
    public var name: String
    /// The arguments, as JSON text.
    public var arguments: String

    public init(name: String, arguments: String) {
        self.name = name
        self.arguments = arguments
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decodeIfPresent(String.self, forKey: .name) ?? ""
        arguments = try c.decodeIfPresent(String.self, forKey: .arguments) ?? ""
    }
}

/// Whether and which tool the model must call.
public enum ToolChoice: Sendable, Hashable, Encodable {
    case auto
    case none
    case required
    case function(String)

    public func encode(to encoder: any Encoder) throws {
        let value: JSONValue
        switch self {
        case .auto: value = "auto"
        case .none: value = "none"
        case .required: value = "required"
        case .function(let name): value = ["type": "function", "function": ["name": .string(name)]]
        }
        try value.encode(to: encoder)
    }
}

/// The shape of the answer: free text, any JSON object, or JSON matching a schema.
public enum ResponseFormat: Sendable, Hashable, Encodable {
    case text
    case jsonObject
    case jsonSchema(name: String, schema: JSONValue, strict: Bool? = nil)

    public func encode(to encoder: any Encoder) throws {
        let value: JSONValue
        switch self {
        case .text: value = ["type": "text"]
        case .jsonObject: value = ["type": "json_object"]
        case .jsonSchema(let name, let schema, let strict):
            var definition: [String: JSONValue] = ["name": .string(name), "schema": schema]
            definition["strict"] = strict.map(JSONValue.bool)
            value = ["type": "json_schema", "json_schema": .object(definition)]
        }
        try value.encode(to: encoder)
    }
}
