import CUring
import Glibc

/// Whether this kernel does multishot receive and accept, learnt from the
/// first completion of each: a kernel without it fails the SQE with `EINVAL`
/// and no `MORE` flag (liburing 2.3's probe covers opcodes, not their
/// flags). Until then every multishot submission is remembered, so the one
/// that fails can be submitted again single-shot and nothing is lost.
struct MultishotSupport {
    enum Support { case unknown, supported, unsupported }

    private(set) var receive: Support
    private(set) var accept: Support
    /// Multishot operations submitted while support is unknown, by token.
    private var probing: [UInt64: Operation] = [:]

    /// `false` turns the operation off for good (the `no-multishot` option,
    /// or no provided-buffer ring for receives).
    init(receive: Bool, accept: Bool) {
        self.receive = receive ? .unknown : .unsupported
        self.accept = accept ? .unknown : .unsupported
    }

    /// Whether to submit `operation` (a stream receive or accept) multishot;
    /// while support is unknown, remembers it to learn from its completion.
    mutating func useMultishot(_ operation: Operation, token: OperationToken) -> Bool {
        let support: Support
        switch operation {
        case .receiveStream: support = receive
        case .acceptStream: support = accept
        default: return false
        }
        if support == .unknown { probing[token.rawValue] = operation }
        return support != .unsupported
    }

    /// Learns from `cqe` if it is the first completion of a remembered
    /// operation. Returns that operation when the kernel refused it: the
    /// caller submits it again (single-shot now) and drops this completion.
    mutating func learn(from cqe: cu_completion) -> Operation? {
        guard !probing.isEmpty, let operation = probing.removeValue(forKey: cqe.user_data) else { return nil }
        let unsupported = cqe.res == -EINVAL && cqe.flags & CompletionFlag.more == 0
        switch operation {
        case .receiveStream:
            if receive == .unknown { receive = unsupported ? .unsupported : .supported }
        case .acceptStream:
            if accept == .unknown { accept = unsupported ? .unsupported : .supported }
        default:
            return nil
        }
        return unsupported ? operation : nil
    }
}
