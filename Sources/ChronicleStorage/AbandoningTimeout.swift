import NIOConcurrencyHelpers

/// Thrown by ``withAbandoningTimeout(_:operation:)``: no answer in time, which says nothing about whether
/// the operation would have succeeded.
struct TimedOut: Error, CustomStringConvertible {
    let limit: Duration
    var description: String { "no answer within \(limit)" }
}

/// Runs `operation` and waits for it at most `limit`; then it is cancelled and no longer waited for.
///
/// Unlike a task-group timeout, which must wait for the cancelled operation to return, this returns on
/// time even when the operation ignores cancellation (a database client waiting on a dead connection), so
/// the log writer can never stall on its database. The abandoned operation finishes on its own; the
/// writer's writes are idempotent, so retrying one that timed out is safe.
func withAbandoningTimeout<T: Sendable>(
    _ limit: Duration,
    operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    let waiting = NIOLockedValueBox<CheckedContinuation<T, any Error>?>(nil)
    let timer = NIOLockedValueBox<Task<Void, Never>?>(nil)
    @Sendable func finish(_ result: Result<T, any Error>) {
        let continuation = waiting.withLockedValue { waiting in
            defer { waiting = nil }
            return waiting
        }
        continuation?.resume(with: result)
    }
    return try await withCheckedThrowingContinuation { continuation in
        waiting.withLockedValue { $0 = continuation }
        let work = Task {
            do {
                finish(.success(try await operation()))
            } catch {
                finish(.failure(error))
            }
            timer.withLockedValue { $0?.cancel() }
        }
        let deadline = Task {
            do { try await Task.sleep(for: limit) } catch { return }
            work.cancel()
            finish(.failure(TimedOut(limit: limit)))
        }
        timer.withLockedValue { $0 = deadline }
    }
}
