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

    private(set) var samples: [String: [Contestant: [[String: Double]]]] = [:]
    private(set) var failures: [String: [Contestant: [String]]] = [:]
    private var measurement: Measurement
    private let settings: Settings
    private let dataFile: String

    init(tools: Toolbox, settings: Settings, dataFile: String) {
        measurement = Measurement(tools: tools, settings: settings, dataFile: dataFile)
        self.settings = settings
        self.dataFile = dataFile
    }

    /// The plan: every round visits every workload, and within a workload every
    /// contestant, starting one further along each round, so drift and a warm
    /// cache favour no one.
    static func plan(_ workloads: [Workload], rounds: Int, taking: (Workload) -> [Contestant]) -> [Run] {
        var plan: [Run] = []
        for round in 0..<rounds {
            for workload in workloads {
                let contestants = taking(workload)
                for index in contestants.indices {
                    plan.append(Run(round: round, workload: workload, contestant: contestants[(index + round) % contestants.count]))
                }
            }
        }
        return plan
    }

    mutating func execute(_ plan: [Run]) {
        let progress = Progress(total: plan.count)
        var warmedRound = -1
        for (index, run) in plan.enumerated() {
            if case .file(_, false, _, _) = run.workload.kind, warmedRound != run.round {
                DataFile.warm(dataFile)  // buffered reads start from a warm page cache, every round
                warmedRound = run.round
            }
            progress.begin(round: run.round + 1, rounds: settings.rounds, workload: run.workload, contestant: run.contestant,
                           remaining: plan[(index + 1)...].map { ($0.key, estimate($0.workload)) })
            let started = Date()
            do {
                samples[run.workload.id, default: [:]][run.contestant, default: []].append(try measurement.run(run.workload, run.contestant))
            } catch {
                failures[run.workload.id, default: [:]][run.contestant, default: []].append("\(error)")
                progress.note("failed: \(run.workload.id) · \(run.contestant.displayName): \(error)")
            }
            progress.end(key: run.key, seconds: Date().timeIntervalSince(started))
        }
        progress.finish()
    }

    /// A first guess at a run's seconds, until the pair has run once.
    private func estimate(_ workload: Workload) -> Double {
        switch workload.kind {
        case .micro: Double(settings.microCount) * 3e-6 + 0.2
        case .echo, .accept: settings.socketSeconds + settings.socketWarmup + 0.4
        case .file(let pattern, _, _, _): pattern == "random" ? settings.fileSeconds + 0.3 : 1
        }
    }
}
