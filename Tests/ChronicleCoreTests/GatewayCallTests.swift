import AsyncHTTPClient
@testable import ChronicleCore
import ChronicleTesting
import Foundation
import NIOConcurrencyHelpers
import Testing

/// The call's state machine on its own: no I/O, every instant from a manual clock.
@Suite("Gateway call state machine")
struct GatewayCallStateMachineTests {
    let clock = ManualClock()
    let origin = ContinuousClock.now
    var now: ContinuousClock.Instant { clock.instant(from: origin) }

    /// Upload, attempts, backoff and upstream waits are not the gateway's time; what is left is.
    @Test func overheadExcludesWaits() {
        var machine = GatewayCall.StateMachine(startedAt: now, consumerTimeIsWaiting: false)
        clock.advance(by: .milliseconds(10))
        machine.addWaiting(.milliseconds(8))                  // reading the client's body
        clock.advance(by: .milliseconds(1))
        machine.attemptStarted()
        let failedAttempt = now
        clock.advance(by: .milliseconds(100))
        machine.attemptFailed(startedAt: failedAttempt, at: now)
        machine.addWaiting(.milliseconds(50))                 // backoff
        clock.advance(by: .milliseconds(50))
        let attempt = now
        clock.advance(by: .milliseconds(200))
        machine.answerStarted(attemptStartedAt: attempt, at: now)
        clock.advance(by: .milliseconds(2))
        let asked = now
        clock.advance(by: .milliseconds(30))
        #expect(machine.eventArrived(isAnswer: true, askedAt: asked, at: now) == .collect)
        clock.advance(by: .milliseconds(4))
        // 397 ms in all: 8 + 100 + 50 + 200 + 30 waiting, 9 ms the gateway's.
        #expect(machine.overhead(at: now) == .milliseconds(9))
        #expect(machine.finish(at: now) == .report(.init(
            elapsed: .milliseconds(397), overhead: .milliseconds(9), timeToFirstEvent: .milliseconds(393))))
    }

    /// An embedder's time between events is its own; the server's encoding and writing are not waiting
    /// unless it says so.
    @Test(arguments: [true, false])
    func consumerTime(consumerTimeIsWaiting: Bool) {
        var machine = GatewayCall.StateMachine(startedAt: now, consumerTimeIsWaiting: consumerTimeIsWaiting)
        machine.attemptStarted()
        machine.answerStarted(attemptStartedAt: now, at: now)
        for _ in 0..<3 {
            let asked = now
            clock.advance(by: .milliseconds(5))               // the upstream
            _ = machine.eventArrived(isAnswer: true, askedAt: asked, at: now)
            clock.advance(by: .milliseconds(20))              // the consumer with the event
        }
        let asked = now
        clock.advance(by: .milliseconds(1))
        _ = machine.eventArrived(isAnswer: false, askedAt: asked, at: now)   // the end
        // 76 ms: 16 upstream; the consumer's 60 are waiting only when its time is its own (the last 20 ms
        // it held an event are counted when it asks again, here at the end).
        let expected: Duration = consumerTimeIsWaiting ? .zero : .milliseconds(60)
        #expect(machine.overhead(at: now) == expected)
    }

    /// A call finishes once: the second finish reports nothing and the figures stay frozen.
    @Test func finishesOnce() {
        var machine = GatewayCall.StateMachine(startedAt: now, consumerTimeIsWaiting: false)
        clock.advance(by: .milliseconds(3))
        guard case .report(let figures) = machine.finish(at: now) else {
            Issue.record("the first finish reports")
            return
        }
        #expect(figures.overhead == .milliseconds(3))
        #expect(figures.timeToFirstEvent == nil)
        clock.advance(by: .milliseconds(50))
        machine.addWaiting(.milliseconds(1))
        #expect(machine.finish(at: now) == .alreadyFinished(figures))
        #expect(machine.overhead(at: now) == .milliseconds(3))
        #expect(machine.eventArrived(isAnswer: true, askedAt: now, at: now) == .ignore,
                "an event after the finish is not collected")
    }

    /// Time to first token is the first chunk or answer, not the response's metadata.
    @Test func timeToFirstEvent() {
        var machine = GatewayCall.StateMachine(startedAt: now, consumerTimeIsWaiting: true)
        machine.attemptStarted()
        clock.advance(by: .milliseconds(40))
        machine.answerStarted(attemptStartedAt: origin, at: now)
        _ = machine.eventArrived(isAnswer: false, askedAt: now, at: now)
        clock.advance(by: .milliseconds(7))
        _ = machine.eventArrived(isAnswer: true, askedAt: now, at: now)
        clock.advance(by: .milliseconds(7))
        _ = machine.eventArrived(isAnswer: true, askedAt: now, at: now)
        #expect(machine.state == .answering(firstEventAt: origin + .milliseconds(47)))
        guard case .report(let figures) = machine.finish(at: now) else {
            Issue.record("the first finish reports")
            return
        }
        #expect(figures.timeToFirstEvent == .milliseconds(47))
    }
}

/// The call object with a gateway: who finishes it, what subscribers see, the release safety net.
@Suite("Gateway call")
struct GatewayCallTests {
    static let chunks = (0..<6).map {
        "data: {\"id\":\"c\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\($0) \"}}]}\n\n"
    }

    /// Every finished call a gateway reports to its subscribers.
    final class Finished: Sendable {
        private let calls = NIOLockedValueBox<[FinishedCall]>([])
        func add(_ call: FinishedCall) { calls.withLockedValue { $0.append(call) } }
        var all: [FinishedCall] { calls.withLockedValue { $0 } }
    }

    func gateway(_ upstream: MockUpstream, finished: Finished) throws -> Gateway {
        let config = GatewayConfiguration(providers: [CustomProviderConfig(name: "p", url: upstream.url(), prefix: "p/")])
        return try Gateway.Builder().withHTTPClient(HTTPClient.shared).withConfiguration(config)
            .onCallFinished { finished.add($0) }.build()
    }

    func streamingUpstream(delay: Duration = .zero) async throws -> MockUpstream {
        try await MockUpstream.start(Reply(headers: [("content-type", "text/event-stream")],
                                           body: .parts(Self.chunks.map { Array($0.utf8) }, delay: delay)))
    }

    /// Reading a stream to its end finishes the call then, once, with its context and time to first token.
    @Test func streamFinishesAtItsEnd() async throws {
        let upstream = try await streamingUpstream()
        defer { Task { await upstream.stop() } }
        let finished = Finished()
        let gateway = try gateway(upstream, finished: finished)
        let call = GatewayCall(context: .init(gatewayKeyName: "team-a"))
        let stream = try await gateway.send(request("p/m").streaming(), call: call)
        var iterator = stream.makeAsyncIterator()
        while try await iterator.next() != nil {
            #expect(finished.all.isEmpty, "not finished before the end")
        }
        #expect(call.isFinished)
        call.finish(.clientDisconnected)
        stream.cancel()
        let calls = finished.all
        #expect(calls.count == 1, "finished exactly once")
        let first = try #require(calls.first)
        #expect(first.record.id == call.id)
        #expect(first.context.gatewayKeyName == "team-a")
        #expect(first.record.error == nil)
        #expect(first.record.chunkCount == Self.chunks.count)
        #expect(first.timeToFirstEvent != nil)
        #expect(!first.finishedOnRelease)
        #expect(gateway.callsFinishedOnRelease == 0)
    }

    /// A call its caller finishes: the stream's end only notes how the upstream ended; the record goes
    /// out at `finish()`, whose overhead is the stored one.
    @Test func callerFinishes() async throws {
        let upstream = try await streamingUpstream()
        defer { Task { await upstream.stop() } }
        let finished = Finished()
        let gateway = try gateway(upstream, finished: finished)
        let call = GatewayCall(finishedBy: .caller)
        let collected = try await gateway.send(request("p/m").streaming(), call: call).collect()
        #expect(collected.response.choices.first?.message.text == "0 1 2 3 4 5 ")
        #expect(finished.all.isEmpty && !call.isFinished)
        let overhead = call.finish()
        #expect(call.finish(.clientDisconnected) == overhead, "a second finish changes nothing")
        let record = try #require(finished.all.first?.record)
        #expect(finished.all.count == 1)
        #expect(record.overhead == overhead)
        #expect(record.error == nil, "the later disconnect does not rewrite a finished call")
        #expect(record.response?.choices.first?.message.text == "0 1 2 3 4 5 ")
    }

    /// A relay's own waits (writing each event to its client) are counted with its next read, so they are
    /// not overhead although the relay takes the call's lock once per event.
    @Test func relayWaitsCountWithTheNextRead() async throws {
        let upstream = try await streamingUpstream()
        defer { Task { await upstream.stop() } }
        let gateway = try gateway(upstream, finished: Finished())
        let clock = ManualClock()
        let origin = ContinuousClock.now
        let call = GatewayCall(finishedBy: .caller, now: { clock.instant(from: origin) })
        var iterator = try await gateway.send(request("p/m").streaming(), call: call).makeAsyncIterator()
        var written = Duration.zero
        var events = 0
        while try await iterator.next(afterWaiting: written) != nil {
            clock.advance(by: .seconds(1))                    // writing the event to a slow client
            written = .seconds(1)
            events += 1
        }
        #expect(events > Self.chunks.count)
        #expect(call.finish() == .zero, "every write was waiting")
    }

    /// `cancel()` finishes the call at once as cancelled, keeping what arrived.
    @Test func cancelFinishesNow() async throws {
        let upstream = try await streamingUpstream(delay: .milliseconds(20))
        defer { Task { await upstream.stop() } }
        let finished = Finished()
        let gateway = try gateway(upstream, finished: finished)
        let stream = try await gateway.send(request("p/m").streaming())
        var iterator = stream.makeAsyncIterator()
        var chunks = 0
        while chunks < 2, let event = try await iterator.next() {
            if case .chunk = event { chunks += 1 }
        }
        stream.cancel()
        let record = try #require(finished.all.first?.record)
        #expect(record.error?.kind == "cancelled")
        #expect(record.httpStatus == 499)
        #expect(record.response?.choices.first?.message.text == "0 1 ")
        #expect(gateway.callsFinishedOnRelease == 0)
    }

    /// The safety net: a stream an embedder drops part-way is recorded as cancelled when its last
    /// reference goes, and counted, so a server can prove it never relies on it.
    @Test func droppedStreamIsFinishedOnRelease() async throws {
        let upstream = try await streamingUpstream(delay: .milliseconds(20))
        defer { Task { await upstream.stop() } }
        let finished = Finished()
        let gateway = try gateway(upstream, finished: finished)
        do {
            var chunks = 0
            for try await event in try await gateway.send(request("p/m").streaming()) {
                if case .chunk = event { chunks += 1 }
                if chunks == 2 { break }
            }
        }
        for _ in 0..<200 where finished.all.isEmpty { try await Task.sleep(for: .milliseconds(5)) }
        let call = try #require(finished.all.first)
        #expect(finished.all.count == 1)
        #expect(call.finishedOnRelease)
        #expect(call.record.error?.kind == "cancelled")
        #expect(call.record.response?.choices.first?.message.text == "0 1 ")
        #expect(gateway.callsFinishedOnRelease == 1)
    }

    /// A call the gateway cannot route is finished by the gateway, with its error, before `send` throws.
    @Test func failedCallIsFinishedBySend() async throws {
        let finished = Finished()
        let gateway = try Gateway.Builder().withHTTPClient(HTTPClient.shared).withoutDefaultProviders().onCallFinished { finished.add($0) }.build()
        let call = GatewayCall(finishedBy: .caller)
        await #expect(throws: GatewayError.self) { try await gateway.send(request("nowhere/m"), call: call) }
        #expect(call.isFinished)
        #expect(finished.all.first?.record.error != nil)
        #expect(finished.all.count == 1)
    }
}
