import NIOCore
import Testing
@testable import ROMANode

/// `switch_dns_caching`: the peer-address cache keeps addresses only while it is on.
@Suite struct PeerAddressCacheTests {
    @Test func keepsAddressesOnlyWhileOn() throws {
        let c = PeerAddressCache()
        let a = try SocketAddress(ipAddress: "127.0.0.2", port: 10002)
        c.remember("host_10002", a)
        #expect(c.address(of: "host_10002") == nil && c.count == 0)   // off: nothing kept
        c.set(true)
        c.remember("host_10002", a)
        #expect(c.address(of: "host_10002") == a)
        c.set(true)                                                     // on again: kept
        #expect(c.count == 1)
        c.set(false)                                                    // off: forgotten
        #expect(c.address(of: "host_10002") == nil && c.count == 0)
    }
}
