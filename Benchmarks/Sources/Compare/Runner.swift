import CompareCore
import Foundation

/// Runs a plan of measurements, one after another, keeping every sample and
/// every failure; a failed run is noted and the plan goes on.
struct Runner {
    struct Run {
        var round: Int
        var workload: Workload
        var contestant: Contestant
        var key: String { "\(workload.id)/\(contestant.rawValue)" }
    }

    private(set) var samples: [String: [Contestant: [Report.Sample]]] = [:]
    private(set) var failures: [String: [Contestant: [String]]] = [:]
    /// The syscall-counting pass: one run per workload and contestant, kept
    /// apart from the timed samples (perf's tracepoint costs a little per syscall).
    private(set) var counts: [String: [Contestant: [String: Double]]] = [:]
    private var measurement: Measurement
    private let settings: Settings

    init(measurement: Measurement, settings: Settings) {
        self.measurement = measurement
        self.settings = settings
    }

    /// The idle-memory workload opens thousands of connections per run and
    /// varies little; it runs in at most this many rounds.
    static let idleRounds = 5

    /// The plan: every round runs every (workload, contestant) pair once, in
    /// an order shuffled afresh each round from the settings' seed, so
    /// neither drift nor a warm cache nor a neighbour's turn favours anyone,
    /// and each round yields one paired sample per contestant.
    static func plan(_ workloads: [Workload], rounds: Int, seed: UInt64, taking: (Workload) -> [Contestant]) -> [Run] {
        var plan: [Run] = []
        for round in 0..<rounds {
            var runs: [Run] = []
            for workload in workloads {
                if case .idle = workload.kind, round >= idleRounds { continue }
                runs += taking(workload).map { Run(round: round, workload: workload, contestant: $0) }
            }
            var random = SplitMix64(seed: seed &+ UInt64(round) &* 0x9E37_79B9)
            random.shuffle(&runs)
            plan += runs
        }
        return plan
    }

    mutating func execute(_ plan: [Run], countingPass: [Run]) {
        let progress = Progress(total: plan.count + countingPass.count)
        let formatter = ISO8601DateFormatter()
        for (index, run) in plan.enumerated() {
            progress.begin(round: run.round + 1, rounds: settings.rounds, workload: run.workload, contestant: run.contestant,
                           remaining: plan[(index + 1)...].map { ($0.key, estimate($0.workload)) })
            let started = Date()
            do {
                let values = try measurement.run(run.workload, run.contestant)
                let sample = Report.Sample(round: run.round, timestamp: formatter.string(from: started), values: values)
                samples[run.workload.id, default: [:]][run.contestant, default: []].append(sample)
            } catch {
                failures[run.workload.id, default: [:]][run.contestant, default: []].append("round \(run.round + 1): \(error)")
                progress.note("failed: \(run.workload.id) · \(run.contestant.displayName): \(error)")
            }
            progress.end(key: run.key, seconds: Date().timeIntervalSince(started))
        }
        for run in countingPass {
            progress.begin(round: 0, rounds: 0, workload: run.workload, contestant: run.contestant, remaining: [])
            let started = Date()
            if let values = try? measurement.run(run.workload, run.contestant, countSyscalls: true) {
                counts[run.workload.id, default: [:]][run.contestant] = values
            }
            progress.end(key: run.key + "/count", seconds: Date().timeIntervalSince(started))
        }
        progress.finish()
    }

    /// A first guess at a run's seconds, until the pair has run once.
    private func estimate(_ workload: Workload) -> Double {
        switch workload.kind {
        case .micro(let name, _):
            name == "timersSpread" ? Double(settings.spreadTimerCount) / Double(Workload.spreadTimersPerMillisecond) / 1000 * 1.1 + 0.3
                : Double(settings.microCount) * 3e-6 + 0.2
        case .echo, .rate, .accept: settings.socketSeconds + settings.socketWarmup + 0.6
        case .http: settings.socketSeconds + max(1, settings.socketWarmup.rounded(.up)) + 0.6
        case .idle: 4
        case .file(let pattern, _, _, _): pattern == "random" ? settings.fileSeconds + 0.3 : 1
        case .copy: 2
        }
    }
}
