/// How long and how often each contestant runs. The same for every
/// contestant of a workload: sizes, connection counts, durations, warm-up.
struct Settings: Codable, Sendable {
    var mode: String
    /// Rounds over every workload and contestant; each contestant's median is over these.
    var rounds: Int
    /// Measured seconds per socket run, after `socketWarmup` unmeasured seconds.
    var socketSeconds: Double
    var socketWarmup: Double
    /// Operations per micro-workload run (after a warm-up of a tenth as many).
    var microCount: Int
    /// Seconds per random file-read run.
    var fileSeconds: Double

    /// About two minutes on 2 cores.
    static let quick = Settings(mode: "quick", rounds: 3, socketSeconds: 0.4, socketWarmup: 0.2, microCount: 50_000, fileSeconds: 0.4)
    /// About fifteen minutes on 2 cores.
    static let full = Settings(mode: "full", rounds: 5, socketSeconds: 2, socketWarmup: 0.5, microCount: 300_000, fileSeconds: 2)
}
