import ChronicleFuzzing
import Foundation
import Testing

/// A short run of the mutation fuzzer on every target, so that a decoder regression fails the suite;
/// `fuzz/run.sh` runs the long campaigns (100,000 inputs each).
@Suite("Fuzzing the decoders")
struct FuzzTests {
    @Test(arguments: Fuzzing.targets(fixtures: Fixtures.directory).map(\.name))
    func decoderHoldsUp(target name: String) async throws {
        let target = try #require(Fuzzing.targets(fixtures: Fixtures.directory).first { $0.name == name })
        // Stream inputs are several events each, so fewer of them; CI's fuzz step runs 20,000 of every target.
        let count = name.hasPrefix("request") || name.hasPrefix("event") ? 3000 : 1000
        // Only a hang fails here: a debug build on a loaded machine makes per-input timings meaningless
        // (fuzz/run.sh holds release builds to a second per input).
        // On a thread of its own: seconds of CPU on Swift Concurrency's few pool threads would starve the
        // other suites' mock upstreams and clients, and their timeouts would fire.
        let report = await withCheckedContinuation { continuation in
            Thread {
                continuation.resume(returning: Fuzzing.run(target, count: count, seed: 0x5EED, slowLimit: .seconds(60)))
            }.start()
        }
        #expect(report.problems.isEmpty, "\(report.problems.prefix(5))")
        #expect(report.inputs == count)
        #expect(report.accepted + report.rejected == report.inputs)
    }
}
