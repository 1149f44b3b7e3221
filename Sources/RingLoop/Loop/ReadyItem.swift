/// Where a callback was scheduled from: kept in debug mode so slow-callback
/// warnings and exception contexts can name it.
public struct CallSite: Sendable, CustomStringConvertible {
    /// The source file of the scheduling call (`#fileID`).
    public var file: StaticString
    /// Its line.
    public var line: UInt
    public var description: String { "\(file):\(line)" }
}

/// One entry of the ready queue: something that can run now.
///
/// The queue itself is a swift-collections `Deque`, a ring buffer, so taking
/// from the front is O(1) and a steady state reuses the same storage.
enum ReadyItem {
    /// A `callSoon` callback.
    case callback(() throws -> Void)
    /// A `callSoon` callback in debug mode, with its call site.
    case tracedCallback(() throws -> Void, CallSite)
    /// A fired `callLater` / `callAt` timer and its handle: a `cancel()` that
    /// arrives after it came due but before it ran still stops it.
    case timer(() throws -> Void, TimerHandle)
    /// A step of a task that prefers this loop: run as a task-executor job,
    /// on its spawn record when the loop spawned it (see SpawnRecord+Executor.swift).
    /// The record is held strongly: a job can outlive its task. `Task.sleep`'s
    /// wake-up job stays in the timer heap after a cancel has resumed the
    /// task and let it finish, and runs at close; an unretained record was
    /// freed by then (TeardownTests' sleeping-task test crashed that way).
    case job(UnownedJob, SpawnRecord?)
    /// A job of an actor whose executor is the loop: run isolated to it.
    case actorJob(UnownedJob)
    /// A transport has closed its socket: tell its protocol
    /// (`connectionLost`) and its server. A case of its own so that the end
    /// of a connection allocates no closure.
    case connectionLost(Transport)
}
