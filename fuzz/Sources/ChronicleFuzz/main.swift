import ChronicleFuzzing
import Foundation

// `chronicle-fuzz [--inputs N] [--seed S] [--target NAME] [--fixtures DIR]`: runs the seeded mutation
// fuzzer (ChronicleFuzzing.Fuzzing) over every decoder that sees untrusted bytes. Exits 1 on any finding.
var inputs = 100_000
var seed: UInt64 = 0xC4A0_11C1E
var only: String?
var fixtures = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("Tests/Fixtures/providers")
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch argument {
    case "--inputs": inputs = arguments.next().flatMap(Int.init) ?? inputs
    case "--seed": seed = arguments.next().flatMap { UInt64($0) } ?? seed
    case "--target": only = arguments.next()
    case "--fixtures": fixtures = URL(fileURLWithPath: arguments.next() ?? fixtures.path)
    default:
        FileHandle.standardError.write(Data("unknown argument \(argument)\n".utf8))
        exit(2)
    }
}

var failed = false
for target in Fuzzing.targets(fixtures: fixtures) where only == nil || target.name == only {
    let report = Fuzzing.run(target, count: inputs, seed: seed)
    print(report)
    for problem in report.problems.prefix(20) { print("  ✘ \(problem)") }
    if !report.problems.isEmpty { failed = true }
}
exit(failed ? 1 : 0)
