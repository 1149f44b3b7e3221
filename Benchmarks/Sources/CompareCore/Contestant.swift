/// Who runs a workload. Every contestant of a workload gets the same
/// parameters; not every contestant takes part in every workload (the C echo
/// servers do no file reads, fio does nothing but file reads).
public enum Contestant: String, CaseIterable, Codable, Sendable {
    case ringloopURing = "ringloop-uring"
    case ringloopEpoll = "ringloop-epoll"
    case ringloopURingProtocol = "ringloop-uring-protocol"
    case ringloopEpollProtocol = "ringloop-epoll-protocol"
    case nio
    case nioAsync = "nio-async"
    case asyncio
    case asyncioStreams = "asyncio-streams"
    case uvloop
    case uvloopStreams = "uvloop-streams"
    case cLiburing = "c-liburing"
    case cLiburingTuned = "c-liburing-tuned"
    case cEpoll = "c-epoll"
    case libuv
    case go
    case fio
    case fioFixed = "fio-fixed"
    case cp

    /// The one every ratio is taken against.
    public static let baseline = Contestant.ringloopURing

    public var displayName: String {
        switch self {
        case .ringloopURing: "RingLoop io_uring"
        case .ringloopEpoll: "RingLoop epoll"
        case .ringloopURingProtocol: "RingLoop io_uring protocol"
        case .ringloopEpollProtocol: "RingLoop epoll protocol"
        case .nio: "SwiftNIO"
        case .nioAsync: "SwiftNIO async"
        case .asyncio: "asyncio"
        case .asyncioStreams: "asyncio streams"
        case .uvloop: "uvloop"
        case .uvloopStreams: "uvloop streams"
        case .cLiburing: "C liburing"
        case .cLiburingTuned: "C liburing tuned"
        case .cEpoll: "C epoll"
        case .libuv: "C libuv"
        case .go: "Go net"
        case .fio: "fio io_uring"
        case .fioFixed: "fio fixed bufs+files"
        case .cp: "cp"
        }
    }

    /// What the contestant is, in a few words, for the method table.
    public var summary: String {
        switch self {
        case .ringloopURing, .ringloopEpoll:
            "Examples/EchoServer --api stream: a task per connection, read into an IOBuffer, writeAll it back"
        case .ringloopURingProtocol, .ringloopEpollProtocol:
            "Examples/EchoServer --api protocol: a TransportProtocol whose dataReceived writes the bytes back; no tasks"
        case .nio: "ServerBootstrap, one event loop, a handler that writes on read and flushes on read-complete"
        case .nioAsync: "ServerBootstrap with NIOAsyncChannel: a task per connection iterating inbound and writing outbound"
        case .asyncio, .uvloop: "Python/asyncio_echo.py: an asyncio.Protocol whose data_received writes the bytes back"
        case .asyncioStreams, .uvloopStreams: "Python/asyncio_echo.py --streams: start_server, reader.read then writer.write + drain"
        case .cLiburing: "C/uring_echo.c: one recv or send SQE per connection at a time, one submit-and-wait per batch (same features as RingLoop)"
        case .cLiburingTuned: "C/uring_echo_tuned.c: multishot accept, multishot recv over a provided-buffer ring, sends from the ring buffer (the ceiling)"
        case .cEpoll: "C/epoll_echo.c: level-triggered epoll, one thread"
        case .libuv: "C/libuv_echo.c: uv_read_start, a uv_write per read, as libuv's examples write it"
        case .go: "Go/echo.go: a goroutine per connection on the netpoller, GOMAXPROCS=1"
        case .fio: "fio --ioengine=io_uring --mem=mmap"
        case .fioFixed: "fio --ioengine=io_uring --mem=mmap --fixedbufs --registerfiles"
        case .cp: "GNU cp (copy_file_range)"
        }
    }

    /// How many reads a file contestant really has going at once, for the
    /// file tables: an io_uring reader keeps its depth in the kernel from one
    /// thread; a thread-pool reader keeps at most one read per pool thread.
    public func fileConcurrency(depth: Int, cores: Int) -> String {
        switch self {
        case .ringloopURing: "1 thread, \(depth) SQEs in flight"
        case .ringloopEpoll: "thread pool of \(cores): \(min(depth, cores)) preads at once"
        case .nio: "NIOThreadPool of \(cores): \(min(depth, cores)) preads at once"
        case .asyncio, .uvloop:
            "default executor of \(min(32, cores + 4)): \(min(depth, min(32, cores + 4))) preadv at once"
        case .fio, .fioFixed: "1 thread, iodepth \(depth)"
        default: ""
        }
    }

    /// The chart's colour for this contestant.
    public var colour: String {
        switch self {
        case .ringloopURing: "#1f77b4"
        case .ringloopEpoll: "#6baed6"
        case .ringloopURingProtocol: "#08306b"
        case .ringloopEpollProtocol: "#4292c6"
        case .nio: "#ff7f0e"
        case .nioAsync: "#fdae6b"
        case .asyncio: "#2ca02c"
        case .asyncioStreams: "#74c476"
        case .uvloop: "#006d2c"
        case .uvloopStreams: "#a1d99b"
        case .cLiburing: "#7f7f7f"
        case .cLiburingTuned: "#252525"
        case .cEpoll: "#c7c7c7"
        case .libuv: "#8c564b"
        case .go: "#17becf"
        case .fio: "#9467bd"
        case .fioFixed: "#c5b0d5"
        case .cp: "#e377c2"
        }
    }

    /// RingLoop's own contestants.
    public var isRingLoop: Bool {
        [.ringloopURing, .ringloopEpoll, .ringloopURingProtocol, .ringloopEpollProtocol].contains(self)
    }
}
