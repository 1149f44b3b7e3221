/// Carries a value the compiler cannot prove `Sendable` across to a pool
/// thread. Used only where the value is handed off, never shared.
struct UnsafeSendable<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}
