import ChronicleFuzzing
import Dispatch
import Foundation
import Synchronization

// `chronicle-fuzz [--inputs N] [--seed S] [--target NAME] [--fixtures DIR]`: runs the seeded mutation
// fuzzer (ChronicleFuzzing.Fuzzing) over every decoder that sees untrusted bytes, the targets side by side
// on the machine's processors. Exits 1 on any finding.
struct Options {
    var inputs = 100_000
    var seed: UInt64 = 0xC4A0_11C1E
    var only: String?
    var fixtures = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("Tests/Fixtures/providers")
}

func parseOptions() -> Options {
    var options = Options()
    var arguments = CommandLine.arguments.dropFirst().makeIterator()
    while let argument = arguments.next() {
        switch argument {
        case "--inputs": options.inputs = arguments.next().flatMap(Int.init) ?? options.inputs
        case "--seed": options.seed = arguments.next().flatMap { UInt64($0) } ?? options.seed
        case "--target": options.only = arguments.next()
        case "--fixtures": options.fixtures = URL(fileURLWithPath: arguments.next() ?? options.fixtures.path)
        default:
            FileHandle.standardError.write(Data("unknown argument \(argument)\n".utf8))
            exit(2)
        }
    }
    return options
}

/// Runs the selected targets in parallel and returns their reports in target order.
func fuzz(_ options: Options) -> [Fuzzing.Report] {
    let targets = Fuzzing.targets(fixtures: options.fixtures).filter { options.only == nil || $0.name == options.only }
    let reports = Mutex([Int: Fuzzing.Report]())
    DispatchQueue.concurrentPerform(iterations: targets.count) { index in
        let report = Fuzzing.run(targets[index], count: options.inputs, seed: options.seed)
        reports.withLock { $0[index] = report }
    }
    return reports.withLock { reports in targets.indices.compactMap { reports[$0] } }
}

var failed = false
for report in fuzz(parseOptions()) {
    print(report)
    for problem in report.problems.prefix(20) { print("  ✘ \(problem)") }
    if !report.problems.isEmpty { failed = true }
}
exit(failed ? 1 : 0)
