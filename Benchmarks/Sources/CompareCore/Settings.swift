/// How long and how often each contestant runs. The same for every
/// contestant of a workload: sizes, connection counts, durations, warm-up.
///
/// The two modes differ only in rounds and run lengths, never in a
/// workload's shape: timer batch sizes and timer density, connection counts
/// and message sizes are part of the workload, so a quick run's ratios
/// estimate the same quantities as a full run's, with wider intervals.
public struct Settings: Codable, Sendable {
    public var mode: String
    /// Rounds over every workload and contestant; each round runs every
    /// contestant once, in a freshly shuffled order.
    public var rounds: Int
    /// Measured seconds per socket run, after every connection's first round
    /// trip and `socketWarmup` unmeasured seconds.
    public var socketSeconds: Double
    public var socketWarmup: Double
    /// Operations per micro-workload run (after a warm-up of a tenth as many).
    public var microCount: Int
    /// Timers per spread-timer run (they fire at a fixed density, so this sets its length).
    public var spreadTimerCount: Int
    /// Seconds per random file-read run.
    public var fileSeconds: Double
    /// Connections held open by the idle-memory workload.
    public var idleConnections: Int
    /// Seed of the run order's shuffles and of the bootstrap.
    public var seed: UInt64
    /// Event-loop threads of the RingLoop and SwiftNIO servers (`--threads`):
    /// 1 compares single loops; more draws a scaling curve on a bigger machine.
    /// Absent in reports made before it existed (read as 1).
    public var serverThreads: Int?

    public init(mode: String, rounds: Int, socketSeconds: Double, socketWarmup: Double, microCount: Int,
                spreadTimerCount: Int, fileSeconds: Double, idleConnections: Int, seed: UInt64) {
        self.mode = mode
        self.rounds = rounds
        self.socketSeconds = socketSeconds
        self.socketWarmup = socketWarmup
        self.microCount = microCount
        self.spreadTimerCount = spreadTimerCount
        self.fileSeconds = fileSeconds
        self.idleConnections = idleConnections
        self.seed = seed
    }

    /// A few minutes on 2 cores: 3 rounds of short runs.
    public static let quick = Settings(mode: "quick", rounds: 3, socketSeconds: 0.5, socketWarmup: 0.25, microCount: 100_000,
                                       spreadTimerCount: 100_000, fileSeconds: 0.5, idleConnections: 2_000, seed: 1)
    /// About an hour on 2 cores: 10 rounds, the run BENCHMARKS.md records.
    public static let full = Settings(mode: "full", rounds: 10, socketSeconds: 1.5, socketWarmup: 0.5, microCount: 300_000,
                                      spreadTimerCount: 100_000, fileSeconds: 1.5, idleConnections: 10_000, seed: 1)
}
