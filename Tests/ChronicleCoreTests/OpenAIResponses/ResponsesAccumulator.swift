@testable import ChronicleCore
import Testing

/// What OpenAI's SDK builds from a Responses stream (`ResponseStreamState`): a snapshot from
/// `response.created`, output items appended on `output_item.added`, content parts on
/// `content_part.added`, deltas added to the item at `output_index`; the final response from
/// `response.completed`. Checks the order the SDK relies on (it fails where the SDK would) and the
/// sequence numbers.
struct ResponsesAccumulator {
    var snapshot: [String: JSONValue] = [:]
    var items: [[String: JSONValue]] = []
    var final: JSONValue?
    var terminal: String?
    var types: [String] = []

    init(_ events: [JSONValue], sourceLocation: SourceLocation = #_sourceLocation) {
        func fail(_ what: String) { Issue.record(Comment(rawValue: what), sourceLocation: sourceLocation) }
        var expectedSequence: Int64 = -1
        for event in events {
            let type = event["type"]?.stringValue ?? "?"
            types.append(type)
            guard let sequence = event["sequence_number"]?.intValue, Int64(sequence) > expectedSequence else {
                fail("\(type): sequence_number missing or not increasing"); return
            }
            expectedSequence = Int64(sequence)
            if terminal != nil { fail("\(type) after \(terminal ?? "")"); return }
            if snapshot.isEmpty {
                guard type == "response.created", let response = event["response"]?.objectValue else {
                    fail("expected response.created before \(type)"); return
                }
                snapshot = response
                continue
            }
            let index = event["output_index"]?.intValue
            switch type {
            case "response.output_item.added":
                guard index == items.count, let item = event["item"]?.objectValue else { fail("output_item.added out of order"); return }
                items.append(item)
            case "response.content_part.added":
                guard let index, items.indices.contains(index), items[index]["type"] == "message",
                      let part = event["part"] else { fail("content_part.added without its message"); return }
                items[index]["content"] = .array((items[index]["content"]?.arrayValue ?? []) + [part])
            case "response.output_text.delta":
                guard let index, items.indices.contains(index), items[index]["type"] == "message",
                      var parts = items[index]["content"]?.arrayValue, let content = event["content_index"]?.intValue,
                      parts.indices.contains(content), case .object(var part) = parts[content]
                else { fail("output_text.delta without its content part"); return }
                part["text"] = .string((part["text"]?.stringValue ?? "") + (event["delta"]?.stringValue ?? ""))
                parts[content] = .object(part)
                items[index]["content"] = .array(parts)
            case "response.function_call_arguments.delta":
                guard let index, items.indices.contains(index), items[index]["type"] == "function_call" else {
                    fail("function_call_arguments.delta without its call"); return
                }
                items[index]["arguments"] = .string((items[index]["arguments"]?.stringValue ?? "") + (event["delta"]?.stringValue ?? ""))
            case "response.reasoning_text.delta":
                // The SDK passes these through without accumulating them; the item must exist.
                guard let index, items.indices.contains(index), items[index]["type"] == "reasoning" else {
                    fail("reasoning_text.delta without its reasoning item"); return
                }
            case "response.reasoning_text.done", "response.output_text.done", "response.content_part.done", "response.function_call_arguments.done",
                 "response.output_item.done":
                guard let index, items.indices.contains(index) else { fail("\(type) for an item never added"); return }
                if type == "response.output_item.done", let item = event["item"]?.objectValue { items[index] = item }
            case "response.completed", "response.incomplete", "response.failed":
                terminal = type
                final = event["response"]
            case "response.in_progress":
                break
            default:
                fail("unexpected event \(type)")
            }
        }
    }

    /// The text of every message item, joined.
    var text: String {
        items.filter { $0["type"] == "message" }.flatMap { $0["content"]?.arrayValue ?? [] }
            .compactMap { $0["text"]?.stringValue }.joined()
    }
}

extension JSONValue {
    /// The element at `index` of an array, for reading answers in tests.
    subscript(index: Int) -> JSONValue? {
        guard case .array(let elements) = self, elements.indices.contains(index) else { return nil }
        return elements[index]
    }
}
