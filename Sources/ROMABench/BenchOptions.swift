import RomaClient
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The three request kinds roma-bench sends.
public enum OpKind: UInt8, Sendable, CaseIterable, Codable {
    case get = 0
    case set = 1
    case delete = 2

    public var name: String {
        switch self {
        case .get: return "get"
        case .set: return "set"
        case .delete: return "delete"
        }
    }
}

/// A request mix `get:set[:delete]`, as integer weights (`90:10` = 90 % gets, 10 % sets).
public struct Mix: Sendable, Equatable, Codable, CustomStringConvertible {
    public var get: Int
    public var set: Int
    public var delete: Int

    public init(get: Int, set: Int, delete: Int = 0) {
        self.get = get
        self.set = set
        self.delete = delete
    }

    public var total: Int { self.get + self.set + self.delete }

    /// Parses `get:set` or `get:set:delete` (non-negative integers, not all zero).
    public init(parsing text: String) throws(BenchOptionError) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3 else {
            throw .invalid("--mix must be get:set or get:set:delete (e.g. 90:10), got '\(text)'")
        }
        var weights: [Int] = []
        for part in parts {
            guard !part.isEmpty, part.allSatisfy({ $0.isASCII && $0.isNumber }), let w = Int(part), w <= 1_000_000 else {
                throw .invalid("--mix weights must be integers between 0 and 1000000, got '\(text)'")
            }
            weights.append(w)
        }
        self.init(get: weights[0], set: weights[1], delete: weights.count == 3 ? weights[2] : 0)
        guard total > 0 else { throw .invalid("--mix must have at least one non-zero weight, got '\(text)'") }
    }

    public var description: String { delete == 0 ? "\(get):\(set)" : "\(get):\(set):\(delete)" }

    /// Picks the operation for a random number `r` in `0..<total`.
    @inline(__always)
    func pick(_ r: Int) -> OpKind {
        if r < get { return .get }
        if r < get + set { return .set }
        return .delete
    }

    /// The single kind if the mix has only one non-zero weight (no random draw needed).
    var onlyKind: OpKind? {
        if set == 0 && delete == 0 { return .get }
        if get == 0 && delete == 0 { return .set }
        if get == 0 && set == 0 { return .delete }
        return nil
    }
}

/// What a run does after connecting.
public enum BenchMode: String, Sendable, Codable {
    /// (optional preload, then) the measured load.
    case run
    /// Only set every key `0..<keys` once (fills a server for a later run or a memory measurement).
    case preloadOnly = "preload-only"
    /// Read back every key `0..<keys` and check each value is the one roma-bench writes for it.
    case verify
}

/// How the run picks keys.
public enum KeyOrder: String, Sendable, Codable, CaseIterable {
    /// Uniformly random in `0..<keys`.
    case random
    /// 0, 1, 2, … across all connections (shared counter, wrapping at `keys`): with `--mix 0:1`
    /// every set writes a new key, so `sequential_keys_issued` tells which keys to verify.
    case sequential
}

public enum BenchOptionError: Error, Equatable, CustomStringConvertible {
    case invalid(String)

    public var description: String {
        switch self {
        case .invalid(let message): return message
        }
    }
}

/// Hard bounds: a run can never be unbounded in time or count.
public enum BenchLimits {
    public static let maxSeconds: Double = 3600
    public static let defaultDuration: Double = 10
    public static let maxConnections = 1000
    public static let maxThreads = 64
    public static let maxPipeline = 1024
    public static let maxKeys = 1_000_000_000
    public static let maxValueSize = 1 << 20
    public static let maxRequests = 10_000_000_000
    public static let maxRate: Double = 10_000_000
    public static let maxKeyPrefix = 200
}

/// Every roma-bench setting. `validate()` checks bounds and the target address.
public struct BenchOptions: Sendable, Equatable {
    public var host = "127.0.0.1"
    public var port = 12000
    public var connections = 4
    /// Measured seconds (after warmup). nil: `--requests` bounds the run, or the 10 s default.
    public var duration: Double?
    /// Measured requests over all connections. nil: time-bounded.
    public var requests: Int?
    public var mix = Mix(get: 90, set: 10)
    public var keys = 100_000
    public var valueSize = 100
    /// Requests in flight per connection (closed loop: kept full; open loop: upper bound).
    public var pipeline = 1
    /// Open loop: total requests per second over all connections. nil: closed loop.
    public var rate: Double?
    public var warmup: Double = 0
    public var threads = 1
    public var preload = false
    public var mode = BenchMode.run
    public var keyPrefix = "key:"
    public var keyOrder = KeyOrder.random
    public var seed: UInt64?
    public var allowRemote = false
    /// Log every measured request slower than this many µs on stderr (`--log-slow-us`).
    public var logSlowMicroseconds: Int?
    /// `--cluster`: go through `RomaClient` (routing table, per-node pools) instead of raw
    /// connections to `host:port`.
    public var cluster = false
    /// `--seeds`: `host:port` seed nodes of the cluster (empty: `host:port`). Implies `cluster`.
    public var seeds: [String] = []
    /// `--node-connections`: RomaClient's pipelined connections per node (`--cluster`).
    public var nodeConnections = 1
    public var connectTimeout: Double = 5
    /// How long to wait for outstanding replies once the run stops issuing.
    public var drainTimeout: Double = 5

    public init() {}

    /// The measured duration bound: `--duration`, else 10 s when `--requests` is absent, else the hard cap.
    public var timeLimit: Double {
        if let duration { return duration }
        if requests == nil { return BenchLimits.defaultDuration }
        return BenchLimits.maxSeconds - warmup
    }

    /// Whether the run is bounded by time (`--duration` or the default) rather than by `--requests`.
    public var isTimeBounded: Bool { duration != nil || requests == nil }

    public func validate() throws(BenchOptionError) {
        guard !host.isEmpty else { throw .invalid("--host must not be empty") }
        if let l = logSlowMicroseconds, l < 1 || l > 60_000_000 { throw .invalid("--log-slow-us must be 1...60000000, got \(l)") }
        guard (1...65535).contains(port) else { throw .invalid("--port must be 1...65535, got \(port)") }
        guard allowRemote || Loopback.isLoopbackHost(host) else {
            throw .invalid("refusing non-loopback target '\(host)': only 127.0.0.0/8, ::1 and localhost are allowed without --allow-remote")
        }
        guard (1...BenchLimits.maxConnections).contains(connections) else {
            throw .invalid("--connections must be 1...\(BenchLimits.maxConnections), got \(connections)")
        }
        guard (1...BenchLimits.maxThreads).contains(threads) else {
            throw .invalid("--threads must be 1...\(BenchLimits.maxThreads), got \(threads)")
        }
        if let duration {
            guard duration.isFinite, duration > 0, duration <= BenchLimits.maxSeconds else {
                throw .invalid("--duration must be > 0 and <= \(Int(BenchLimits.maxSeconds)) seconds, got \(duration)")
            }
        }
        if let requests {
            guard (1...BenchLimits.maxRequests).contains(requests) else {
                throw .invalid("--requests must be 1...\(BenchLimits.maxRequests), got \(requests)")
            }
        }
        guard warmup.isFinite, warmup >= 0, warmup + (duration ?? 0) <= BenchLimits.maxSeconds else {
            throw .invalid("--warmup must be >= 0 and warmup + duration <= \(Int(BenchLimits.maxSeconds)) seconds")
        }
        guard (1...BenchLimits.maxKeys).contains(keys) else {
            throw .invalid("--keys must be 1...\(BenchLimits.maxKeys), got \(keys)")
        }
        guard (0...BenchLimits.maxValueSize).contains(valueSize) else {
            throw .invalid("--value-size must be 0...\(BenchLimits.maxValueSize), got \(valueSize)")
        }
        guard (1...BenchLimits.maxPipeline).contains(pipeline) else {
            throw .invalid("--pipeline must be 1...\(BenchLimits.maxPipeline), got \(pipeline)")
        }
        if let rate {
            guard rate.isFinite, rate > 0, rate <= BenchLimits.maxRate else {
                throw .invalid("--rate must be > 0 and <= \(Int(BenchLimits.maxRate)) requests/s, got \(rate)")
            }
        }
        guard mix.get >= 0, mix.set >= 0, mix.delete >= 0, mix.total > 0 else {
            throw .invalid("--mix must have non-negative weights, not all zero")
        }
        guard keyPrefix.utf8.count <= BenchLimits.maxKeyPrefix,
              keyPrefix.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw .invalid("--key-prefix must be at most \(BenchLimits.maxKeyPrefix) printable ASCII characters without spaces")
        }
        guard connectTimeout > 0, connectTimeout <= 60, drainTimeout >= 0, drainTimeout <= 60 else {
            throw .invalid("timeouts must be within 0...60 seconds")
        }
        if cluster || !seeds.isEmpty {
            guard rate == nil else { throw .invalid("--rate (open loop) is not available with --cluster") }
            guard logSlowMicroseconds == nil else { throw .invalid("--log-slow-us is not available with --cluster") }
            guard (1...1000).contains(nodeConnections) else { throw .invalid("--node-connections must be 1...1000, got \(nodeConnections)") }
            guard connections * pipeline <= 10_000 else {
                throw .invalid("--cluster runs connections × pipeline concurrent requests: at most 10000, got \(connections * pipeline)")
            }
            for seed in seeds {
                guard let a = NodeAddress(seed) else { throw .invalid("--seeds: bad seed '\(seed)', expected host:port") }
                guard allowRemote || Loopback.isLoopbackHost(a.host) else {
                    throw .invalid("refusing non-loopback seed '\(seed)': only 127.0.0.0/8, ::1 and localhost are allowed without --allow-remote")
                }
            }
        }
        if mode != .run {
            guard !preload else { throw .invalid("--preload only applies to a load run") }
            guard rate == nil else { throw .invalid("--rate only applies to a load run") }
        }
    }
}

/// Which targets count as local.
public enum Loopback {
    /// `localhost`, any IPv4 address in 127.0.0.0/8, `::1` (also bracketed) and IPv4-mapped
    /// loopback (`::ffff:127.x.y.z`). Everything else, including other host names, is remote.
    public static func isLoopbackHost(_ host: String) -> Bool {
        var h = host.lowercased()
        if h.hasPrefix("[") && h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        if h == "localhost" || h == "localhost." { return true }
        if let v4 = parseIPv4(h) { return v4.0 == 127 }
        if let v6 = parseIPv6(h) { return isLoopbackIPv6(v6) }
        return false
    }

    static func parseIPv4(_ text: String) -> (UInt8, UInt8, UInt8, UInt8)? {
        var addr = in_addr()
        guard inet_pton(AF_INET, text, &addr) == 1 else { return nil }
        return withUnsafeBytes(of: &addr) { ($0[0], $0[1], $0[2], $0[3]) }
    }

    static func parseIPv6(_ text: String) -> [UInt8]? {
        var addr = in6_addr()
        guard inet_pton(AF_INET6, text, &addr) == 1 else { return nil }
        return withUnsafeBytes(of: &addr) { Array($0) }
    }

    static func isLoopbackIPv6(_ bytes: [UInt8]) -> Bool {
        guard bytes.count == 16 else { return false }
        if bytes[0..<15].allSatisfy({ $0 == 0 }) && bytes[15] == 1 { return true }
        // IPv4-mapped ::ffff:a.b.c.d
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF { return bytes[12] == 127 }
        return false
    }

    /// Checks a resolved socket address (raw bytes of the IP).
    static func isLoopbackAddressBytes(_ bytes: [UInt8]) -> Bool {
        if bytes.count == 4 { return bytes[0] == 127 }
        return isLoopbackIPv6(bytes)
    }
}
