extension Collection {
    /// Consecutive slices of at most `size` elements, in order, none empty:
    /// how the large-write paths (`SocketStream.writeAll`, `File.writeAll`)
    /// walk a collection of any index type a chunk at a time, with no copy.
    func slices(of size: Int) -> UnfoldSequence<SubSequence, Index> {
        precondition(size > 0, "slices(of:) needs a positive size")
        return sequence(state: startIndex) { start in
            guard start != endIndex else { return nil }
            let end = index(start, offsetBy: size, limitedBy: endIndex) ?? endIndex
            defer { start = end }
            return self[start..<end]
        }
    }

    /// True when the collection holds at most `count` elements, found without
    /// walking past them (`count` itself is O(n) for some collections).
    func fits(_ count: Int) -> Bool {
        index(startIndex, offsetBy: count, limitedBy: endIndex).map { $0 == endIndex } ?? true
    }
}
