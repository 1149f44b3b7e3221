/// A 4-ary implicit min-heap of timer entries.
///
/// swift-collections' `Heap` is a min-max heap: it answers both `min` and
/// `max`, and pays for that with grandchild comparisons on every pop. A timer
/// queue only ever needs the minimum. Measured on 1M random timers this
/// heap pops about 3x faster (see Docs/Timers.md), and with four children per
/// node it is half as deep as a binary heap, which matters once the entries no
/// longer fit in cache.
struct TimerHeap<Element: Comparable> {
    private(set) var storage: ContiguousArray<Element> = []

    init() {}

    /// Builds a heap from arbitrary elements in O(n).
    init(_ elements: some Sequence<Element>) {
        storage = ContiguousArray(elements)
        guard storage.count > 1 else { return }
        var index = (storage.count - 2) / 4
        while true {
            siftDown(from: index)
            if index == 0 { break }
            index -= 1
        }
    }

    var count: Int { storage.count }
    var isEmpty: Bool { storage.isEmpty }
    var min: Element? { storage.first }

    mutating func insert(_ element: Element) {
        storage.append(element)
        siftUp(from: storage.count - 1)
    }

    @discardableResult
    mutating func removeMin() -> Element? {
        guard let last = storage.popLast() else { return nil }
        guard !storage.isEmpty else { return last }
        let top = storage[0]
        storage[0] = last
        siftDown(from: 0)
        return top
    }

    private mutating func siftUp(from start: Int) {
        storage.withUnsafeMutableBufferPointer { buffer in
            var child = start
            let element = buffer[child]
            while child > 0 {
                let parent = (child - 1) / 4
                guard element < buffer[parent] else { break }
                buffer[child] = buffer[parent]
                child = parent
            }
            buffer[child] = element
        }
    }

    private mutating func siftDown(from start: Int) {
        storage.withUnsafeMutableBufferPointer { buffer in
            let count = buffer.count
            var parent = start
            let element = buffer[parent]
            while true {
                let first = 4 * parent + 1
                if first >= count { break }
                var best = first
                let end = Swift.min(first + 4, count)
                var i = first + 1
                while i < end {
                    if buffer[i] < buffer[best] { best = i }
                    i += 1
                }
                guard buffer[best] < element else { break }
                buffer[parent] = buffer[best]
                parent = best
            }
            buffer[parent] = element
        }
    }
}
