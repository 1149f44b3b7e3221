/// Who runs a workload. Every contestant gets the same workload parameters;
/// not every contestant takes part in every workload (the C echo servers do
/// no file reads, fio does nothing but file reads).
enum Contestant: String, CaseIterable, Codable, Sendable {
    case ringloopURing = "ringloop-uring"
    case ringloopEpoll = "ringloop-epoll"
    case nio
    case asyncio
    case uvloop
    case cLiburing = "c-liburing"
    case cEpoll = "c-epoll"
    case fio

    /// The one every ratio is taken against.
    static let baseline = Contestant.ringloopURing

    var displayName: String {
        switch self {
        case .ringloopURing: "RingLoop io_uring"
        case .ringloopEpoll: "RingLoop epoll"
        case .nio: "SwiftNIO"
        case .asyncio: "Python asyncio"
        case .uvloop: "Python uvloop"
        case .cLiburing: "C liburing"
        case .cEpoll: "C epoll"
        case .fio: "fio io_uring"
        }
    }

    /// The chart's colour for this contestant.
    var colour: String {
        switch self {
        case .ringloopURing: "#1f77b4"
        case .ringloopEpoll: "#6baed6"
        case .nio: "#ff7f0e"
        case .asyncio: "#2ca02c"
        case .uvloop: "#98df8a"
        case .cLiburing: "#7f7f7f"
        case .cEpoll: "#c7c7c7"
        case .fio: "#9467bd"
        }
    }
}
