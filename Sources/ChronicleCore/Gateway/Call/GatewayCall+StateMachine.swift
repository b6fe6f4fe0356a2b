extension GatewayCall {
    /// Where one call is in its life and how its wall time splits into the gateway's own work (*overhead*)
    /// and waiting on others: the client's upload, upstream attempts, backoff, a slow client, and, for an
    /// embedder, the time it spends between events. Plain data: no I/O, no lock, no clock of its own —
    /// every instant is passed in, so it is tested synchronously. ``GatewayCall`` holds one under its lock.
    struct StateMachine: Sendable {
        enum State: Sendable, Equatable {
            /// The request was received; no provider has been tried yet.
            case accepted
            /// An attempt is in flight (or a backoff before the next one).
            case attempting
            /// A provider accepted the request; its events are being relayed. `firstEventAt` is when the
            /// first chunk or complete answer arrived.
            case answering(firstEventAt: ContinuousClock.Instant?)
            /// The call is finished; its figures are frozen.
            case finished(Figures)
        }

        /// What a finished call measured.
        struct Figures: Sendable, Equatable {
            /// From acceptance to the finish.
            var elapsed: Duration
            /// The gateway's own part of ``elapsed``.
            var overhead: Duration
            /// From acceptance to the first chunk or complete answer, when one arrived.
            var timeToFirstEvent: Duration?
        }

        /// What the caller does after ``finish(at:)``.
        enum FinishAction: Sendable, Equatable {
            /// The first finish: report the call with these figures.
            case report(Figures)
            /// Finished before; nothing to report again.
            case alreadyFinished(Figures)
        }

        /// What the caller does after ``eventArrived(isAnswer:askedAt:at:)``.
        enum EventAction: Sendable, Equatable {
            /// Collect the event into the answer.
            case collect
            /// The call finished before the event came (the client went away): drop it.
            case ignore
        }

        private(set) var state: State = .accepted
        let startedAt: ContinuousClock.Instant
        /// True when the consumer's time between events is its own (an embedder reading a ``ChatStream``);
        /// false when the caller brackets its own waits (the server writing to its client).
        let consumerTimeIsWaiting: Bool
        private(set) var waited: Duration = .zero
        /// When the last event was handed to a consumer whose time is its own.
        private var handedOverAt: ContinuousClock.Instant?

        init(startedAt: ContinuousClock.Instant, consumerTimeIsWaiting: Bool) {
            self.startedAt = startedAt
            self.consumerTimeIsWaiting = consumerTimeIsWaiting
        }

        var isFinished: Bool {
            if case .finished = state { return true }
            return false
        }

        /// Counts `duration` as waiting; ignored once finished, whose figures are frozen.
        mutating func addWaiting(_ duration: Duration) {
            guard !isFinished, duration > .zero else { return }
            waited += duration
        }

        /// An attempt starts (the first, or one after a failure).
        mutating func attemptStarted() {
            guard case .accepted = state else { return }
            state = .attempting
        }

        /// The attempt that began at `start` failed at `now`: its time was the upstream's.
        mutating func attemptFailed(startedAt start: ContinuousClock.Instant, at now: ContinuousClock.Instant) {
            addWaiting(now - start)
        }

        /// A provider accepted the attempt that began at `start`; its events follow.
        mutating func answerStarted(attemptStartedAt start: ContinuousClock.Instant, at now: ContinuousClock.Instant) {
            guard !isFinished else { return }
            addWaiting(now - start)
            state = .answering(firstEventAt: nil)
        }

        /// The consumer asked for the next event at `askedAt` and the upstream answered at `now` (with an
        /// event, the end, or an error). The upstream's time is waiting; so is the consumer's since the
        /// previous event when that time is its own.
        mutating func eventArrived(isAnswer: Bool, askedAt: ContinuousClock.Instant, at now: ContinuousClock.Instant)
            -> EventAction
        {
            guard case .answering(let firstEventAt) = state else { return .ignore }
            if consumerTimeIsWaiting {
                if let handedOverAt { addWaiting(askedAt - handedOverAt) }
                handedOverAt = now
            }
            addWaiting(now - askedAt)
            if isAnswer, firstEventAt == nil { state = .answering(firstEventAt: now) }
            return .collect
        }

        /// The gateway's own time so far, or at the finish.
        func overhead(at now: ContinuousClock.Instant) -> Duration {
            if case .finished(let figures) = state { return figures.overhead }
            return max(.zero, now - startedAt - waited)
        }

        /// Finishes the call at `now`, once: the first call freezes the figures and says to report them.
        mutating func finish(at now: ContinuousClock.Instant) -> FinishAction {
            switch state {
            case .finished(let figures):
                return .alreadyFinished(figures)
            case .answering(let firstEventAt):
                let figures = Figures(elapsed: now - startedAt, overhead: overhead(at: now),
                                      timeToFirstEvent: firstEventAt.map { $0 - startedAt })
                state = .finished(figures)
                return .report(figures)
            case .accepted, .attempting:
                let figures = Figures(elapsed: now - startedAt, overhead: overhead(at: now), timeToFirstEvent: nil)
                state = .finished(figures)
                return .report(figures)
            }
        }
    }
}
