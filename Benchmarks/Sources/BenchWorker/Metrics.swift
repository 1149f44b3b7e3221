import Glibc

/// This process's CPU time, user plus system, over all its threads (a
/// thread pool's work included), in nanoseconds.
func processCPUNanoseconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    let user = Double(usage.ru_utime.tv_sec) * 1e9 + Double(usage.ru_utime.tv_usec) * 1e3
    let system = Double(usage.ru_stime.tv_sec) * 1e9 + Double(usage.ru_stime.tv_usec) * 1e3
    return user + system
}

/// Monotonic wall time in nanoseconds.
func monotonicNanoseconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) * 1e9 + Double(now.tv_nsec)
}

/// Prints metrics as the one JSON line `Compare` reads: names to numbers.
func printMetrics(_ metrics: KeyValuePairs<String, Double>) {
    let fields = metrics.map { "\"\($0.key)\":\($0.value.isFinite ? String($0.value) : "0")" }
    print("{" + fields.joined(separator: ",") + "}")
}
