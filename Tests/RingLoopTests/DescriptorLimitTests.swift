import Glibc
@testable import RingLoop
import Testing

extension AllSuites {
    /// `DescriptorLimit`: the soft `RLIMIT_NOFILE` raised to the hard one.
    @Suite("Descriptor limit", .serialized, .timeLimit(.minutes(1)))
    struct DescriptorLimitTests {
        @Test("raiseToMaximum lifts a low soft limit to the hard one: descriptors past the old limit open")
        func raise() throws {
            let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
            var original = rlimit()
            #expect(getrlimit(resource, &original) == 0)
            defer { _ = setrlimit(resource, &original) }
            let open = openDescriptorCount()
            var low = original
            low.rlim_cur = rlim_t(open + 8)
            #expect(setrlimit(resource, &low) == 0)
            #expect(DescriptorLimit.current == open + 8)
            #expect(DescriptorLimit.maximum == Int(clamping: original.rlim_max))

            var sockets: [Int32] = []
            defer { for fd in sockets { close(fd) } }
            func openSockets(_ count: Int) -> Int32 {
                for _ in 0..<count {
                    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
                    if fd < 0 { return errno }
                    sockets.append(fd)
                }
                return 0
            }
            #expect(openSockets(16) == EMFILE)   // the low limit holds

            let raised = try DescriptorLimit.raiseToMaximum()
            #expect(raised == Int(clamping: original.rlim_max))
            #expect(DescriptorLimit.current == raised)
            #expect(openSockets(16) == 0)        // past the old limit now
            #expect(try DescriptorLimit.raiseToMaximum() == raised)   // already there: unchanged
        }
    }
}
