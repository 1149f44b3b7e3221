/// An object that takes the completions of operations it submitted, on the
/// loop thread, straight from completion processing: no task, no
/// continuation. Transports and servers are handlers; their multishot
/// receives and accepts deliver many completions to one registration.
protocol CompletionHandler: AnyObject {
    /// One completion of an operation submitted with
    /// ``HandlerTable/token(_:kind:)``; `kind` is the kind given there.
    func handleCompletion(kind: UInt8, result: Int32, flags: UInt32)
    /// The loop is closing: stop, cancel what is in flight, and let the
    /// final completions end the registration.
    func loopClosing()
    /// The loop is closing where completions cannot be reaped (off the
    /// ring's issuer thread): close at once, without waiting for them.
    func loopAbandoned()
}

/// Identifies a registration in the ``HandlerTable``.
struct HandlerID: Equatable, Sendable {
    var slot: UInt32
    var generation: UInt32
}

/// The loop's registered completion handlers, indexed by the slot packed in
/// a handler token. Loop-thread only.
///
/// A registration holds its handler strongly: a transport whose operations
/// are still in the kernel stays alive until their final completions, and
/// only then unregisters. Slots are recycled through a free list and their
/// generation changes on reuse, so a late completion for an old registration
/// finds a different generation and is dropped. 16 bytes per registration,
/// no allocation per operation.
final class HandlerTable {
    private struct Entry {
        var handler: CompletionHandler?
        var generation: UInt32 = 1
        var nextFree: UInt32 = .max
    }

    @exclusivity(unchecked) private var entries: [Entry] = []
    @exclusivity(unchecked) private var freeHead: UInt32 = .max
    /// Registrations alive now.
    @exclusivity(unchecked) private(set) var count = 0

    func register(_ handler: CompletionHandler) -> HandlerID {
        let slot: UInt32
        if freeHead != .max {
            slot = freeHead
            freeHead = entries[Int(slot)].nextFree
        } else {
            slot = UInt32(entries.count)
            entries.append(Entry())
        }
        entries[Int(slot)].handler = handler
        count += 1
        return HandlerID(slot: slot, generation: entries[Int(slot)].generation)
    }

    /// Ends a registration; completions still carrying its tokens are dropped.
    func unregister(_ id: HandlerID) {
        guard Int(id.slot) < entries.count, entries[Int(id.slot)].generation == id.generation,
              entries[Int(id.slot)].handler != nil else { return }
        entries[Int(id.slot)].handler = nil
        let next = (entries[Int(id.slot)].generation &+ 1) & OperationToken.handlerGenerationMask
        entries[Int(id.slot)].generation = next == 0 ? 1 : next
        entries[Int(id.slot)].nextFree = freeHead
        freeHead = id.slot
        count -= 1
    }

    /// The `user_data` for an operation of kind `kind` (0...15) of `id`.
    func token(_ id: HandlerID, kind: UInt8) -> OperationToken {
        OperationToken(handler: id.slot, generation: id.generation, kind: kind)
    }

    /// Every handler registered now.
    var all: [CompletionHandler] { entries.compactMap(\.handler) }

    /// Hands a completion to its handler; drops it if the registration ended.
    @inline(__always)
    func dispatch(_ completion: Completion) {
        let slot = Int(completion.token.slot)
        guard slot < entries.count, entries[slot].generation == completion.token.handlerGeneration,
              let handler = entries[slot].handler else { return }
        handler.handleCompletion(kind: completion.token.handlerKind, result: completion.result, flags: completion.flags)
    }
}
