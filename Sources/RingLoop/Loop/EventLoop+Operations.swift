import CUring
import Glibc

extension EventLoop: CancellableWait {
    /// Submits one backend operation and suspends the calling task until its
    /// final completion. Returns the kernel-style result: `>= 0` on success,
    /// `-errno` on failure, `-ECANCELED` when Task cancellation won.
    ///
    /// - `prepare` builds the operation; it may point the kernel at the slot's
    ///   scratch memory, which stays put until the completion.
    /// - `extract` runs after the completion, before the slot is recycled, so
    ///   it can read what the kernel wrote into the scratch memory.
    /// - `keepAlive` is retained until the final completion, even after
    ///   cancellation: the owner of any buffer the operation names.
    /// - Task cancellation submits ASYNC_CANCEL from the loop thread; the task
    ///   still resumes only when the original operation completes.
    /// - `timeout` links an `IORING_OP_LINK_TIMEOUT` to the operation (a
    ///   backend timer on epoll): when it passes first, the operation completes
    ///   with `-ECANCELED`.
    ///
    /// Must run on the loop thread (a task on this loop).
    ///
    /// `track` is told the token when the operation starts and again (with
    /// `nil`) when it ends, so an owner can cancel exactly its own operations.
    nonisolated(nonsending) func perform<R>(
        _ name: StaticString,
        fd: Int32 = -1,
        keepAlive: AnyObject? = nil,
        timeout: Duration? = nil,
        track: ((OperationToken, Bool) -> Void)? = nil,
        _ prepare: (UnsafeMutablePointer<OperationScratch>) -> Operation,
        extract: (UnsafeMutablePointer<OperationScratch>, Int32) -> R
    ) async throws(EventLoopError) -> R {
        try requireLoopThread(String(describing: name))
        let token = operations.acquire(fd: fd, keepAlive: keepAlive)
        track?(token, true)
        defer {
            track?(token, false)
            operations.release(token)
        }
        if Task.isCancelled { return extract(operations.scratch(token), -ECANCELED) }
        let result = await suspend(cancelling: self, id: token.slot) { (continuation: UnsafeContinuation<Int32, Never>) in
            guard operations.markSubmitted(token, continuation: continuation) else {
                continuation.resume(returning: -ECANCELED)
                return
            }
            let scratch = operations.scratch(token)
            let operation = prepare(scratch)
            if let timeout {
                let ns = max(0, timeout.clampedNanoseconds)
                scratch.timespec.pointee = __kernel_timespec(tv_sec: ns / 1_000_000_000, tv_nsec: ns % 1_000_000_000)
                io.submit(operation, token: token, linkTimeout: scratch.timespec)
            } else {
                io.submit(operation, token: token)
            }
        }
        return extract(operations.scratch(token), result)
    }

    /// ``perform(_:fd:keepAlive:_:extract:)`` for operations whose only result
    /// is the integer the kernel returns.
    nonisolated(nonsending) func perform(
        _ name: StaticString,
        fd: Int32 = -1,
        keepAlive: AnyObject? = nil,
        _ prepare: (UnsafeMutablePointer<OperationScratch>) -> Operation
    ) async throws(EventLoopError) -> Int32 {
        try await perform(name, fd: fd, keepAlive: keepAlive, prepare, extract: { _, result in result })
    }

    /// Submits `count` operations and waits for all of them with one
    /// suspension; returns each one's kernel-style result, in order.
    /// `prepare` gets the member's index and scratch memory. Cancelling the
    /// task cancels every member still in flight (their results say
    /// `-ECANCELED`). Each member's `keepAlive` lives until its final completion.
    nonisolated(nonsending) func performBatch(
        _ name: StaticString,
        count: Int,
        fd: Int32 = -1,
        keepAlive: (Int) -> AnyObject?,
        track: ((OperationToken, Bool) -> Void)? = nil,
        _ prepare: (Int, UnsafeMutablePointer<OperationScratch>) -> Operation
    ) async throws(EventLoopError) -> [Int32] {
        try requireLoopThread(String(describing: name))
        guard count > 0 else { return [] }
        let tokens = (0..<count).map { operations.acquire(fd: fd, keepAlive: keepAlive($0)) }
        let batch = OperationBatch(loop: self, tokens: tokens)
        for token in tokens { track?(token, true) }
        defer {
            for token in tokens {
                track?(token, false)
                operations.release(token)
            }
        }
        if Task.isCancelled { return batch.results }
        await suspend(cancelling: batch, id: 0) { (continuation: UnsafeContinuation<Void, Never>) in
            batch.continuation = continuation
            for (index, token) in tokens.enumerated() {
                guard operations.markSubmitted(token, batch: batch, index: index) else {
                    batch.finished(index, result: -ECANCELED)   // cancelled before it was submitted
                    continue
                }
                io.submit(prepare(index, operations.scratch(token)), token: token)
            }
        }
        return batch.results
    }

    func cancelOnLoop(_ token: OperationToken) {
        if operations.requestCancel(token) == .sendCancel { io.cancel(token) }
    }

    /// Loop thread: cancels the operation in slot `slot` if it is still in
    /// flight. The slot is enough: a routed wait is disarmed before its
    /// operation's slot is released, so the slot is still that operation's.
    func cancelWait(_ slot: UInt32) {
        if let token = operations.token(ofSlot: slot) { cancelOnLoop(token) }
    }

    /// Resumes the task of every finished operation. Runs after the backend
    /// reaped its whole batch, so no user code runs inside the reaping loop:
    /// a resume only puts the task's job on the ready queue.
    ///
    /// Handler completions (transports, servers) call their handler here,
    /// which may run protocol callbacks: still after the reaping, never
    /// inside it.
    func deliverCompletions() {
        receivesThisPoll = 0
        bulkReceiveThisPoll = false
        for completion in completions {
            if completion.token.isHandler {
                handlers.dispatch(completion)
            } else if let continuation = operations.complete(completion.token) {
                continuation.resume(returning: completion.result)
            } else if let (batch, index) = operations.takeBatch(completion.token) {
                batch.finished(index, result: completion.result)
            }
        }
        completions.removeAllKeepingStorage()
    }

    /// Cancels every operation in flight: so that closing the loop cannot
    /// leave an operation behind.
    func cancelOperations() {
        for token in operations.submittedTokens() { cancelOnLoop(token) }
    }

    /// Cancels the given operations (a descriptor's own, before its close).
    func cancelOperations(_ tokens: [OperationToken]) {
        for token in tokens { cancelOnLoop(token) }
    }
}
