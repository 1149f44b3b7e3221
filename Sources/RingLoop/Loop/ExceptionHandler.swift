import Logging

/// What went wrong in a callback or task, as passed to the exception handler:
/// asyncio's exception-handler context.
public struct ExceptionContext: @unchecked Sendable, CustomStringConvertible {
    /// Where the error came from.
    public enum Source: @unchecked Sendable, CustomStringConvertible {
        /// A `callSoon` callback; the call site is known in debug mode.
        case callback(CallSite?)
        /// A `callLater` / `callAt` timer, by its deadline.
        case timer(when: LoopInstant)
        /// A Swift task, by name where it has one.
        case task(String?)
        /// A transport's protocol callback, by name (`dataReceived`, ...).
        case `protocol`(String)
        /// The loop itself (for example an exception handler that threw).
        case loop

        public var description: String {
            switch self {
            case .callback(let site): site.map { "callback scheduled at \($0)" } ?? "callback"
            case .timer(let when): "timer due at \(when)"
            case .task(let name): name.map { "task '\($0)'" } ?? "task"
            case .protocol(let callback): "protocol callback \(callback)"
            case .loop: "event loop"
            }
        }
    }

    /// A human-readable summary.
    public var message: String
    /// The error that was thrown, if any.
    public var error: (any Error)?
    /// The callback, timer or task it came from.
    public var source: Source

    /// A context to pass to ``EventLoop/callExceptionHandler(_:)``, for
    /// errors of your own that should go where the loop's go.
    public init(message: String, error: (any Error)? = nil, source: Source = .loop) {
        self.message = message
        self.error = error
        self.source = source
    }

    public var description: String {
        var text = "\(message) [\(source)]"
        if let error { text += ": \(error)" }
        return text
    }
}

/// A custom exception handler: called on the loop thread with the loop and
/// the context. If it throws, the loop logs that and keeps running.
public typealias ExceptionHandler = (EventLoop, ExceptionContext) throws -> Void

extension EventLoop {
    /// The custom exception handler, or `nil` for the default one.
    public var exceptionHandler: ExceptionHandler? { exceptionHandlerStorage }

    /// Replaces the exception handler; `nil` restores the default.
    ///
    /// ```swift
    /// loop.setExceptionHandler { loop, context in
    ///     metrics.increment("loop.errors")
    ///     loop.defaultExceptionHandler(context)
    /// }
    /// ```
    public func setExceptionHandler(_ handler: ExceptionHandler?) {
        exceptionHandlerStorage = handler
    }

    /// Logs `context` through the loop's logger at error level.
    public func defaultExceptionHandler(_ context: ExceptionContext) {
        var metadata: Logger.Metadata = ["source": "\(context.source)"]
        if let error = context.error { metadata["error"] = "\(error)" }
        logger.error("\(context.message)", metadata: metadata)
    }

    /// Calls the current exception handler. An error the handler throws is
    /// logged through the default handler and goes no further.
    public func callExceptionHandler(_ context: ExceptionContext) {
        guard let handler = exceptionHandlerStorage else {
            defaultExceptionHandler(context)
            return
        }
        do {
            try handler(self, context)
        } catch {
            defaultExceptionHandler(ExceptionContext(
                message: "Unhandled error in exception handler while handling: \(context.message)",
                error: error, source: .loop))
        }
    }
}
