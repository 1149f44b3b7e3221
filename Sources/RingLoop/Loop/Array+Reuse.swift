extension Array {
    /// Empties the array and keeps its storage, for the lists the loop
    /// refills every iteration (completions, transports to flush).
    ///
    /// `removeAll(keepingCapacity: true)` goes through a range replacement
    /// that costs about 85 instructions even for one element, twice per
    /// echo on a quiet connection (callgrind); popping costs a few per
    /// element, so a long list still takes the bulk path.
    @inline(__always)
    mutating func removeAllKeepingStorage() {
        if count > 8 {
            removeAll(keepingCapacity: true)
        } else {
            while popLast() != nil {}
        }
    }
}
