/// Decides which routing choice to try next and how long to wait first.
///
/// A plain state machine with no I/O, so every retry decision is testable without sockets or sleeps:
/// - The first pass tries every choice once, back to back, starting at `start`; a failure of any kind falls
///   through to the next choice. Every choice is tried even when there are more choices than `maxTries`.
/// - Then, while attempts remain, the choices whose last error was retryable are retried in turn, each after
///   a backoff wait (at least as long as a rate limit asked for).
public struct AttemptPlanner: Sendable {
    /// What to do after a failed attempt.
    public enum Decision: Sendable, Equatable {
        /// Try `choice` after waiting `wait` (zero during the first pass).
        case attempt(choice: Int, wait: Duration)
        /// Stop and report the last error.
        case giveUp
    }

    public let choiceCount: Int
    public let start: Int
    public let options: RetryOptions
    /// Attempts made so far.
    public private(set) var attempts = 1
    public private(set) var wasRateLimited = false
    private var current: Int
    private var firstPassDone: Bool
    /// For each choice, the wait its last error asked for, or `nil` once it cannot succeed.
    private var retryable: [Duration?]
    private var backoff: Duration

    /// - Parameters:
    ///   - choiceCount: the number of routing choices (at least one).
    ///   - start: the first choice to try.
    public init(choiceCount: Int, start: Int = 0, options: RetryOptions) {
        // Resolution never yields zero choices; clamping keeps a bad `start` from an injected chooser harmless.
        let count = max(choiceCount, 1)
        let first = min(max(start, 0), count - 1)
        self.choiceCount = count
        self.start = first
        self.options = options
        self.current = first
        self.firstPassDone = count == 1
        self.retryable = Array(repeating: nil, count: count)
        self.backoff = options.initialBackoff
    }

    /// The choice the first attempt uses.
    public var firstChoice: Int { start }

    /// Records the failure of the current attempt and decides what comes next.
    public mutating func next(after error: ProviderError, using random: inout some RandomNumberGenerator) -> Decision {
        if error.kind == .rateLimit { wasRateLimited = true }
        var retryAfter = error.retryAfter ?? .zero
        if error.kind == .rateLimit, options.failIfRateLimitExceedsMaxBackoff, retryAfter > options.maxBackoff {
            // The provider wants a longer pause than we are allowed to wait: treat this choice as spent.
            retryAfter = .zero
            retryable[current] = nil
        } else {
            retryable[current] = error.kind.isRetryable ? retryAfter : nil
        }

        if !firstPassDone {
            let next = (current + 1) % choiceCount
            if next != start {
                current = next
                attempts += 1
                return .attempt(choice: next, wait: .zero)
            }
            firstPassDone = true
        }

        guard attempts < max(options.maxTries, choiceCount) else { return .giveUp }
        // Retry the next choice, cycling from the one after the current, that may still succeed.
        for offset in 1...choiceCount {
            let candidate = (current + offset) % choiceCount
            guard let asked = retryable[candidate] else { continue }
            current = candidate
            attempts += 1
            return .attempt(choice: candidate, wait: max(nextBackoff(using: &random), asked))
        }
        return .giveUp
    }

    /// The next backoff wait with jitter, capped; advances the backoff only when a wait happens.
    private mutating func nextBackoff(using random: inout some RandomNumberGenerator) -> Duration {
        let jitterMs = options.jitter.milliseconds
        let jitter: Duration = jitterMs > 0 ? .milliseconds(Int64.random(in: 0...jitterMs, using: &random)) : .zero
        let wait = min(backoff + jitter, options.maxBackoff)
        backoff = options.increase.next(after: backoff)
        return wait
    }
}
