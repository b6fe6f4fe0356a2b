// A small agent on the Chronicle client library: one run of three steps (plan, call tools, answer), with
// tool calls, through a local Chronicle gateway. Every call and step is recorded under the run.
//
//     chronicle serve &                      # a local gateway, with provider keys in its environment
//     swift run Agent --model openai/gpt-4o-mini "What should I wear in Paris and Oslo today?"
//
// Options: --url (default: CHRONICLE_URL, else http://127.0.0.1:9782), --model, --key (a gateway key).
import ChronicleClient
import Foundation

struct Options {
    var url = ProcessInfo.processInfo.environment["CHRONICLE_URL"] ?? "http://127.0.0.1:9782"
    var model = "openai/gpt-4o-mini"
    var key: String?
    var question = "What should I wear in Paris and in Oslo today?"

    init(_ arguments: [String]) {
        var rest = arguments.dropFirst()
        var words: [String] = []
        while let argument = rest.popFirst() {
            switch argument {
            case "--url": url = rest.popFirst() ?? url
            case "--model": model = rest.popFirst() ?? model
            case "--key": key = rest.popFirst()
            default: words.append(argument)
            }
        }
        if !words.isEmpty { question = words.joined(separator: " ") }
    }
}

/// The agent's one tool: a made-up weather service, so the example needs no other API.
struct WeatherArguments: Codable {
    var city: String
}

struct Weather: Codable {
    var city: String
    var celsius: Int
    var sky: String
}

func lookUpWeather(_ arguments: WeatherArguments) -> Weather {
    let celsius = arguments.city.unicodeScalars.reduce(0) { ($0 + Int($1.value)) % 30 }
    return Weather(city: arguments.city, celsius: celsius, sky: celsius > 15 ? "sunny" : "cloudy")
}

let weatherTool = Tool.function(
    "get_weather", description: "Today's weather in a city",
    parameters: ["type": "object", "properties": ["city": ["type": "string"]], "required": ["city"]])

let options = Options(CommandLine.arguments)
let client = ChronicleClient(
    baseURL: options.url, apiKey: options.key,
    configuration: .init(metadata: CallMetadata(application: "example-agent")))

var runID: UUID?
do {
    let answer = try await client.run("weather-agent", input: ["question": options.question]) { run in
        runID = run.id
        var messages: [ChatMessage] = [.system("Use the tools to answer briefly."), .user(options.question)]

        // 1. Plan: the model decides which tools to call.
        let plan = try await run.step("plan", type: "llm") { _ in
            try await client.chat(ChatRequest(model: options.model, messages: messages, tools: [weatherTool]))
        }
        messages.append(.assistant(plan.text, toolCalls: plan.toolCalls.isEmpty ? nil : plan.toolCalls))

        // 2. Call the tools, each as a step of its own, in parallel child tasks (still inside the step).
        let results = try await run.step("call tools", type: "tool") { step in
            try await withThrowingTaskGroup(of: ChatMessage.self) { group in
                for call in plan.toolCalls {
                    group.addTask {
                        try await step.step(call.function.name, type: "tool", input: call.function.arguments) { _ in
                            let weather = lookUpWeather(try call.arguments(as: WeatherArguments.self))
                            let json = String(decoding: try JSONEncoder().encode(weather), as: UTF8.self)
                            return ChatMessage.tool(callID: call.id, content: json)
                        }
                    }
                }
                var answers: [ChatMessage] = []
                for try await answer in group { answers.append(answer) }
                return answers
            }
        }
        run.event("tools_called", data: ["count": results.count])
        messages += results

        // 3. Answer with the tools' results.
        return try await run.step("answer", type: "llm") { _ in
            try await client.chat(ChatRequest(model: options.model, messages: messages)).text ?? ""
        }
    }
    print(answer)
} catch {
    print("The agent failed: \(error)")
}

let left = await client.shutdown(timeout: .seconds(5))
if left > 0 { print("\(left) events could not be delivered to \(options.url)") }
if let runID {
    let id = runID.uuidString.lowercased()
    print("\nThe run:       \(options.url)/v1/runs/\(id)")
    print("In the dashboard: \(options.url)/ui/#/runs/\(id)")
}
