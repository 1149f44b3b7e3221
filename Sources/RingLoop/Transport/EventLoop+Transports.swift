extension EventLoop {
    /// Queues `transport` to send at the end of this iteration.
    func scheduleFlush(_ transport: Transport) {
        flushList.append(transport)
    }

    /// Sends what every transport queued this iteration: one `send` or
    /// `sendmsg` each, all reaching the kernel with the poll's one enter.
    func flushTransports() {
        // Swapped out, so a flush that queues again lands in the next list.
        var list: [Transport] = []
        swap(&list, &flushList)
        for transport in list { transport.flush() }
        list.removeAllKeepingStorage()
        if flushList.isEmpty { swap(&list, &flushList) }
    }

    /// `transport`'s receive ended with ENOBUFS: re-arm it once buffers return.
    func waitForReceiveBuffers(_ transport: Transport) {
        buffersWaiters.append(transport)
    }

    /// Re-arms as many waiting transports as there are buffers back, oldest
    /// first. Runs after each batch of completions, when buffers were recycled.
    func rearmBufferWaiters() {
        let available = io.receiveBuffers.available
        guard available > 0 else { return }
        let count = Swift.min(available, buffersWaiters.count)
        let waking = buffersWaiters.prefix(count)
        buffersWaiters.removeFirst(count)
        for transport in waking { transport.buffersAvailable() }
    }

    /// An error a protocol callback threw: to the exception handler.
    func reportProtocolError(_ error: any Error, _ callback: String) {
        pendingExceptions.append(ExceptionContext(message: "Unhandled error in protocol callback \(callback); the connection is aborted",
                                                  error: error, source: .protocol(callback)))
    }
}
