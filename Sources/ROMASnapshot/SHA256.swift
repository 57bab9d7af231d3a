/// SHA-256 (FIPS 180-4), implemented here so the snapshot tools need no crypto package.
///
/// Incremental: `update` any number of times, then `finalize()`. The compression function is
/// fully unrolled over local variables, which keeps it reasonably fast even in debug builds.
public struct SHA256: Sendable {
    /// Digest size in bytes.
    public static let digestSize = 32

    private var h0: UInt32 = 0x6a09e667
    private var h1: UInt32 = 0xbb67ae85
    private var h2: UInt32 = 0x3c6ef372
    private var h3: UInt32 = 0xa54ff53a
    private var h4: UInt32 = 0x510e527f
    private var h5: UInt32 = 0x9b05688c
    private var h6: UInt32 = 0x1f83d9ab
    private var h7: UInt32 = 0x5be0cd19
    /// Bytes of an incomplete block (fewer than 64).
    private var pending: [UInt8] = []
    /// Message length in bytes so far.
    private var length: UInt64 = 0

    public init() { pending.reserveCapacity(64) }

    /// Adds `data` to the message.
    public mutating func update(_ data: UnsafeRawBufferPointer) {
        guard data.count > 0, let base = data.baseAddress else { return }
        length &+= UInt64(data.count)
        var offset = 0
        if !pending.isEmpty {
            let take = min(64 - pending.count, data.count)
            pending.append(contentsOf: UnsafeRawBufferPointer(start: base, count: take))
            offset = take
            if pending.count < 64 { return }
            pending.withUnsafeBytes { compress($0.baseAddress!) }
            pending.removeAll(keepingCapacity: true)
        }
        while data.count - offset >= 64 {
            compress(base + offset)
            offset += 64
        }
        if offset < data.count {
            pending.append(contentsOf: UnsafeRawBufferPointer(start: base + offset, count: data.count - offset))
        }
    }

    /// Adds `bytes` to the message.
    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Adds the UTF-8 bytes of `text` to the message.
    public mutating func update(_ text: String) {
        update(Array(text.utf8))
    }

    /// Pads the message and returns the 32-byte digest. The value must not be updated afterwards.
    public mutating func finalize() -> [UInt8] {
        let bitLength = length &* 8
        var tail: [UInt8] = [0x80]
        let used = (pending.count + 1) % 64
        let zeros = used <= 56 ? 56 - used : 120 - used
        tail.append(contentsOf: repeatElement(0, count: zeros))
        for i in (0..<8).reversed() { tail.append(UInt8(truncatingIfNeeded: bitLength >> (UInt64(i) * 8))) }
        let savedLength = length
        tail.withUnsafeBytes { update($0) }
        length = savedLength
        precondition(pending.isEmpty)
        var out: [UInt8] = []
        out.reserveCapacity(32)
        for h in [h0, h1, h2, h3, h4, h5, h6, h7] {
            out.append(UInt8(truncatingIfNeeded: h >> 24))
            out.append(UInt8(truncatingIfNeeded: h >> 16))
            out.append(UInt8(truncatingIfNeeded: h >> 8))
            out.append(UInt8(truncatingIfNeeded: h))
        }
        return out
    }

    /// Digest of `bytes`.
    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        var s = SHA256()
        s.update(bytes)
        return s.finalize()
    }

    /// Lower-case hexadecimal text of `bytes`.
    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// One 64-byte block.
    private mutating func compress(_ p: UnsafeRawPointer) {
        var w0 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
        var w1 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        var w2 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        var w3 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
        var w4 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 16, as: UInt32.self))
        var w5 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 20, as: UInt32.self))
        var w6 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 24, as: UInt32.self))
        var w7 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 28, as: UInt32.self))
        var w8 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 32, as: UInt32.self))
        var w9 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 36, as: UInt32.self))
        var w10 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 40, as: UInt32.self))
        var w11 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 44, as: UInt32.self))
        var w12 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 48, as: UInt32.self))
        var w13 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 52, as: UInt32.self))
        var w14 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 56, as: UInt32.self))
        var w15 = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 60, as: UInt32.self))
        var a = h0, b = h1, c = h2, d = h3, e = h4, f = h5, g = h6, h = h7
        var x: UInt32 = 0
        var y: UInt32 = 0
        // round 0
        x = ((e &>> 6) | (e &<< 26)) ^ ((e &>> 11) | (e &<< 21))
        x ^= ((e &>> 25) | (e &<< 7))
        y = (e & f) ^ (~e & g)
        h = h &+ x &+ y &+ 0x428a2f98 &+ w0
        d = d &+ h
        x = ((a &>> 2) | (a &<< 30)) ^ ((a &>> 13) | (a &<< 19))
        x ^= ((a &>> 22) | (a &<< 10))
        y = (a & b) ^ (a & c) ^ (b & c)
        h = h &+ x &+ y
        // round 1
        x = ((d &>> 6) | (d &<< 26)) ^ ((d &>> 11) | (d &<< 21))
        x ^= ((d &>> 25) | (d &<< 7))
        y = (d & e) ^ (~d & f)
        g = g &+ x &+ y &+ 0x71374491 &+ w1
        c = c &+ g
        x = ((h &>> 2) | (h &<< 30)) ^ ((h &>> 13) | (h &<< 19))
        x ^= ((h &>> 22) | (h &<< 10))
        y = (h & a) ^ (h & b) ^ (a & b)
        g = g &+ x &+ y
        // round 2
        x = ((c &>> 6) | (c &<< 26)) ^ ((c &>> 11) | (c &<< 21))
        x ^= ((c &>> 25) | (c &<< 7))
        y = (c & d) ^ (~c & e)
        f = f &+ x &+ y &+ 0xb5c0fbcf &+ w2
        b = b &+ f
        x = ((g &>> 2) | (g &<< 30)) ^ ((g &>> 13) | (g &<< 19))
        x ^= ((g &>> 22) | (g &<< 10))
        y = (g & h) ^ (g & a) ^ (h & a)
        f = f &+ x &+ y
        // round 3
        x = ((b &>> 6) | (b &<< 26)) ^ ((b &>> 11) | (b &<< 21))
        x ^= ((b &>> 25) | (b &<< 7))
        y = (b & c) ^ (~b & d)
        e = e &+ x &+ y &+ 0xe9b5dba5 &+ w3
        a = a &+ e
        x = ((f &>> 2) | (f &<< 30)) ^ ((f &>> 13) | (f &<< 19))
        x ^= ((f &>> 22) | (f &<< 10))
        y = (f & g) ^ (f & h) ^ (g & h)
        e = e &+ x &+ y
        // round 4
        x = ((a &>> 6) | (a &<< 26)) ^ ((a &>> 11) | (a &<< 21))
        x ^= ((a &>> 25) | (a &<< 7))
        y = (a & b) ^ (~a & c)
        d = d &+ x &+ y &+ 0x3956c25b &+ w4
        h = h &+ d
        x = ((e &>> 2) | (e &<< 30)) ^ ((e &>> 13) | (e &<< 19))
        x ^= ((e &>> 22) | (e &<< 10))
        y = (e & f) ^ (e & g) ^ (f & g)
        d = d &+ x &+ y
        // round 5
        x = ((h &>> 6) | (h &<< 26)) ^ ((h &>> 11) | (h &<< 21))
        x ^= ((h &>> 25) | (h &<< 7))
        y = (h & a) ^ (~h & b)
        c = c &+ x &+ y &+ 0x59f111f1 &+ w5
        g = g &+ c
        x = ((d &>> 2) | (d &<< 30)) ^ ((d &>> 13) | (d &<< 19))
        x ^= ((d &>> 22) | (d &<< 10))
        y = (d & e) ^ (d & f) ^ (e & f)
        c = c &+ x &+ y
        // round 6
        x = ((g &>> 6) | (g &<< 26)) ^ ((g &>> 11) | (g &<< 21))
        x ^= ((g &>> 25) | (g &<< 7))
        y = (g & h) ^ (~g & a)
        b = b &+ x &+ y &+ 0x923f82a4 &+ w6
        f = f &+ b
        x = ((c &>> 2) | (c &<< 30)) ^ ((c &>> 13) | (c &<< 19))
        x ^= ((c &>> 22) | (c &<< 10))
        y = (c & d) ^ (c & e) ^ (d & e)
        b = b &+ x &+ y
        // round 7
        x = ((f &>> 6) | (f &<< 26)) ^ ((f &>> 11) | (f &<< 21))
        x ^= ((f &>> 25) | (f &<< 7))
        y = (f & g) ^ (~f & h)
        a = a &+ x &+ y &+ 0xab1c5ed5 &+ w7
        e = e &+ a
        x = ((b &>> 2) | (b &<< 30)) ^ ((b &>> 13) | (b &<< 19))
        x ^= ((b &>> 22) | (b &<< 10))
        y = (b & c) ^ (b & d) ^ (c & d)
        a = a &+ x &+ y
        // round 8
        x = ((e &>> 6) | (e &<< 26)) ^ ((e &>> 11) | (e &<< 21))
        x ^= ((e &>> 25) | (e &<< 7))
        y = (e & f) ^ (~e & g)
        h = h &+ x &+ y &+ 0xd807aa98 &+ w8
        d = d &+ h
        x = ((a &>> 2) | (a &<< 30)) ^ ((a &>> 13) | (a &<< 19))
        x ^= ((a &>> 22) | (a &<< 10))
        y = (a & b) ^ (a & c) ^ (b & c)
        h = h &+ x &+ y
        // round 9
        x = ((d &>> 6) | (d &<< 26)) ^ ((d &>> 11) | (d &<< 21))
        x ^= ((d &>> 25) | (d &<< 7))
        y = (d & e) ^ (~d & f)
        g = g &+ x &+ y &+ 0x12835b01 &+ w9
        c = c &+ g
        x = ((h &>> 2) | (h &<< 30)) ^ ((h &>> 13) | (h &<< 19))
        x ^= ((h &>> 22) | (h &<< 10))
        y = (h & a) ^ (h & b) ^ (a & b)
        g = g &+ x &+ y
        // round 10
        x = ((c &>> 6) | (c &<< 26)) ^ ((c &>> 11) | (c &<< 21))
        x ^= ((c &>> 25) | (c &<< 7))
        y = (c & d) ^ (~c & e)
        f = f &+ x &+ y &+ 0x243185be &+ w10
        b = b &+ f
        x = ((g &>> 2) | (g &<< 30)) ^ ((g &>> 13) | (g &<< 19))
        x ^= ((g &>> 22) | (g &<< 10))
        y = (g & h) ^ (g & a) ^ (h & a)
        f = f &+ x &+ y
        // round 11
        x = ((b &>> 6) | (b &<< 26)) ^ ((b &>> 11) | (b &<< 21))
        x ^= ((b &>> 25) | (b &<< 7))
        y = (b & c) ^ (~b & d)
        e = e &+ x &+ y &+ 0x550c7dc3 &+ w11
        a = a &+ e
        x = ((f &>> 2) | (f &<< 30)) ^ ((f &>> 13) | (f &<< 19))
        x ^= ((f &>> 22) | (f &<< 10))
        y = (f & g) ^ (f & h) ^ (g & h)
        e = e &+ x &+ y
        // round 12
        x = ((a &>> 6) | (a &<< 26)) ^ ((a &>> 11) | (a &<< 21))
        x ^= ((a &>> 25) | (a &<< 7))
        y = (a & b) ^ (~a & c)
        d = d &+ x &+ y &+ 0x72be5d74 &+ w12
        h = h &+ d
        x = ((e &>> 2) | (e &<< 30)) ^ ((e &>> 13) | (e &<< 19))
        x ^= ((e &>> 22) | (e &<< 10))
        y = (e & f) ^ (e & g) ^ (f & g)
        d = d &+ x &+ y
        // round 13
        x = ((h &>> 6) | (h &<< 26)) ^ ((h &>> 11) | (h &<< 21))
        x ^= ((h &>> 25) | (h &<< 7))
        y = (h & a) ^ (~h & b)
        c = c &+ x &+ y &+ 0x80deb1fe &+ w13
        g = g &+ c
        x = ((d &>> 2) | (d &<< 30)) ^ ((d &>> 13) | (d &<< 19))
        x ^= ((d &>> 22) | (d &<< 10))
        y = (d & e) ^ (d & f) ^ (e & f)
        c = c &+ x &+ y
        // round 14
        x = ((g &>> 6) | (g &<< 26)) ^ ((g &>> 11) | (g &<< 21))
        x ^= ((g &>> 25) | (g &<< 7))
        y = (g & h) ^ (~g & a)
        b = b &+ x &+ y &+ 0x9bdc06a7 &+ w14
        f = f &+ b
        x = ((c &>> 2) | (c &<< 30)) ^ ((c &>> 13) | (c &<< 19))
        x ^= ((c &>> 22) | (c &<< 10))
        y = (c & d) ^ (c & e) ^ (d & e)
        b = b &+ x &+ y
        // round 15
        x = ((f &>> 6) | (f &<< 26)) ^ ((f &>> 11) | (f &<< 21))
        x ^= ((f &>> 25) | (f &<< 7))
        y = (f & g) ^ (~f & h)
        a = a &+ x &+ y &+ 0xc19bf174 &+ w15
        e = e &+ a
        x = ((b &>> 2) | (b &<< 30)) ^ ((b &>> 13) | (b &<< 19))
        x ^= ((b &>> 22) | (b &<< 10))
        y = (b & c) ^ (b & d) ^ (c & d)
        a = a &+ x &+ y
        // round 16
        x = ((w14 &>> 17) | (w14 &<< 15)) ^ ((w14 &>> 19) | (w14 &<< 13))
        x ^= w14 &>> 10
        y = ((w1 &>> 7) | (w1 &<< 25)) ^ ((w1 &>> 18) | (w1 &<< 14))
        y ^= w1 &>> 3
        w0 = w0 &+ x &+ w9 &+ y
        x = ((e &>> 6) | (e &<< 26)) ^ ((e &>> 11) | (e &<< 21))
        x ^= ((e &>> 25) | (e &<< 7))
        y = (e & f) ^ (~e & g)
        h = h &+ x &+ y &+ 0xe49b69c1 &+ w0
        d = d &+ h
        x = ((a &>> 2) | (a &<< 30)) ^ ((a &>> 13) | (a &<< 19))
        x ^= ((a &>> 22) | (a &<< 10))
        y = (a & b) ^ (a & c) ^ (b & c)
        h = h &+ x &+ y
        // round 17
        x = ((w15 &>> 17) | (w15 &<< 15)) ^ ((w15 &>> 19) | (w15 &<< 13))
        x ^= w15 &>> 10
        y = ((w2 &>> 7) | (w2 &<< 25)) ^ ((w2 &>> 18) | (w2 &<< 14))
        y ^= w2 &>> 3
        w1 = w1 &+ x &+ w10 &+ y
        x = ((d &>> 6) | (d &<< 26)) ^ ((d &>> 11) | (d &<< 21))
        x ^= ((d &>> 25) | (d &<< 7))
        y = (d & e) ^ (~d & f)
        g = g &+ x &+ y &+ 0xefbe4786 &+ w1
        c = c &+ g
        x = ((h &>> 2) | (h &<< 30)) ^ ((h &>> 13) | (h &<< 19))
        x ^= ((h &>> 22) | (h &<< 10))
        y = (h & a) ^ (h & b) ^ (a & b)
        g = g &+ x &+ y
        // round 18
        x = ((w0 &>> 17) | (w0 &<< 15)) ^ ((w0 &>> 19) | (w0 &<< 13))
        x ^= w0 &>> 10
        y = ((w3 &>> 7) | (w3 &<< 25)) ^ ((w3 &>> 18) | (w3 &<< 14))
        y ^= w3 &>> 3
        w2 = w2 &+ x &+ w11 &+ y
        x = ((c &>> 6) | (c &<< 26)) ^ ((c &>> 11) | (c &<< 21))
        x ^= ((c &>> 25) | (c &<< 7))
        y = (c & d) ^ (~c & e)
        f = f &+ x &+ y &+ 0x0fc19dc6 &+ w2
        b = b &+ f
        x = ((g &>> 2) | (g &<< 30)) ^ ((g &>> 13) | (g &<< 19))
        x ^= ((g &>> 22) | (g &<< 10))
        y = (g & h) ^ (g & a) ^ (h & a)
        f = f &+ x &+ y
        // round 19
        x = ((w1 &>> 17) | (w1 &<< 15)) ^ ((w1 &>> 19) | (w1 &<< 13))
        x ^= w1 &>> 10
        y = ((w4 &>> 7) | (w4 &<< 25)) ^ ((w4 &>> 18) | (w4 &<< 14))
        y ^= w4 &>> 3
        w3 = w3 &+ x &+ w12 &+ y
        x = ((b &>> 6) | (b &<< 26)) ^ ((b &>> 11) | (b &<< 21))
        x ^= ((b &>> 25) | (b &<< 7))
        y = (b & c) ^ (~b & d)
        e = e &+ x &+ y &+ 0x240ca1cc &+ w3
        a = a &+ e
        x = ((f &>> 2) | (f &<< 30)) ^ ((f &>> 13) | (f &<< 19))
        x ^= ((f &>> 22) | (f &<< 10))
        y = (f & g) ^ (f & h) ^ (g & h)
        e = e &+ x &+ y
        // round 20
        x = ((w2 &>> 17) | (w2 &<< 15)) ^ ((w2 &>> 19) | (w2 &<< 13))
        x ^= w2 &>> 10
        y = ((w5 &>> 7) | (w5 &<< 25)) ^ ((w5 &>> 18) | (w5 &<< 14))
        y ^= w5 &>> 3
        w4 = w4 &+ x &+ w13 &+ y
        x = ((a &>> 6) | (a &<< 26)) ^ ((a &>> 11) | (a &<< 21))
        x ^= ((a &>> 25) | (a &<< 7))
        y = (a & b) ^ (~a & c)
        d = d &+ x &+ y &+ 0x2de92c6f &+ w4
        h = h &+ d
        x = ((e &>> 2) | (e &<< 30)) ^ ((e &>> 13) | (e &<< 19))
        x ^= ((e &>> 22) | (e &<< 10))
        y = (e & f) ^ (e & g) ^ (f & g)
        d = d &+ x &+ y
        // round 21
        x = ((w3 &>> 17) | (w3 &<< 15)) ^ ((w3 &>> 19) | (w3 &<< 13))
        x ^= w3 &>> 10
        y = ((w6 &>> 7) | (w6 &<< 25)) ^ ((w6 &>> 18) | (w6 &<< 14))
        y ^= w6 &>> 3
        w5 = w5 &+ x &+ w14 &+ y
        x = ((h &>> 6) | (h &<< 26)) ^ ((h &>> 11) | (h &<< 21))
        x ^= ((h &>> 25) | (h &<< 7))
        y = (h & a) ^ (~h & b)
        c = c &+ x &+ y &+ 0x4a7484aa &+ w5
        g = g &+ c
        x = ((d &>> 2) | (d &<< 30)) ^ ((d &>> 13) | (d &<< 19))
        x ^= ((d &>> 22) | (d &<< 10))
        y = (d & e) ^ (d & f) ^ (e & f)
        c = c &+ x &+ y
        // round 22
        x = ((w4 &>> 17) | (w4 &<< 15)) ^ ((w4 &>> 19) | (w4 &<< 13))
        x ^= w4 &>> 10
        y = ((w7 &>> 7) | (w7 &<< 25)) ^ ((w7 &>> 18) | (w7 &<< 14))
        y ^= w7 &>> 3
        w6 = w6 &+ x &+ w15 &+ y
        x = ((g &>> 6) | (g &<< 26)) ^ ((g &>> 11) | (g &<< 21))
        x ^= ((g &>> 25) | (g &<< 7))
        y = (g & h) ^ (~g & a)
        b = b &+ x &+ y &+ 0x5cb0a9dc &+ w6
        f = f &+ b
        x = ((c &>> 2) | (c &<< 30)) ^ ((c &>> 13) | (c &<< 19))
        x ^= ((c &>> 22) | (c &<< 10))
        y = (c & d) ^ (c & e) ^ (d & e)
        b = b &+ x &+ y
        // round 23
        x = ((w5 &>> 17) | (w5 &<< 15)) ^ ((w5 &>> 19) | (w5 &<< 13))
        x ^= w5 &>> 10
        y = ((w8 &>> 7) | (w8 &<< 25)) ^ ((w8 &>> 18) | (w8 &<< 14))
        y ^= w8 &>> 3
        w7 = w7 &+ x &+ w0 &+ y
        x = ((f &>> 6) | (f &<< 26)) ^ ((f &>> 11) | (f &<< 21))
        x ^= ((f &>> 25) | (f &<< 7))
        y = (f & g) ^ (~f & h)
        a = a &+ x &+ y &+ 0x76f988da &+ w7
        e = e &+ a
        x = ((b &>> 2) | (b &<< 30)) ^ ((b &>> 13) | (b &<< 19))
        x ^= ((b &>> 22) | (b &<< 10))
        y = (b & c) ^ (b & d) ^ (c & d)
        a = a &+ x &+ y
        // round 24
        x = ((w6 &>> 17) | (w6 &<< 15)) ^ ((w6 &>> 19) | (w6 &<< 13))
        x ^= w6 &>> 10
        y = ((w9 &>> 7) | (w9 &<< 25)) ^ ((w9 &>> 18) | (w9 &<< 14))
        y ^= w9 &>> 3
        w8 = w8 &+ x &+ w1 &+ y
        x = ((e &>> 6) | (e &<< 26)) ^ ((e &>> 11) | (e &<< 21))
        x ^= ((e &>> 25) | (e &<< 7))
        y = (e & f) ^ (~e & g)
        h = h &+ x &+ y &+ 0x983e5152 &+ w8
        d = d &+ h
        x = ((a &>> 2) | (a &<< 30)) ^ ((a &>> 13) | (a &<< 19))
        x ^= ((a &>> 22) | (a &<< 10))
        y = (a & b) ^ (a & c) ^ (b & c)
        h = h &+ x &+ y
        // round 25
        x = ((w7 &>> 17) | (w7 &<< 15)) ^ ((w7 &>> 19) | (w7 &<< 13))
        x ^= w7 &>> 10
        y = ((w10 &>> 7) | (w10 &<< 25)) ^ ((w10 &>> 18) | (w10 &<< 14))
        y ^= w10 &>> 3
        w9 = w9 &+ x &+ w2 &+ y
        x = ((d &>> 6) | (d &<< 26)) ^ ((d &>> 11) | (d &<< 21))
        x ^= ((d &>> 25) | (d &<< 7))
        y = (d & e) ^ (~d & f)
        g = g &+ x &+ y &+ 0xa831c66d &+ w9
        c = c &+ g
        x = ((h &>> 2) | (h &<< 30)) ^ ((h &>> 13) | (h &<< 19))
        x ^= ((h &>> 22) | (h &<< 10))
        y = (h & a) ^ (h & b) ^ (a & b)
        g = g &+ x &+ y
        // round 26
        x = ((w8 &>> 17) | (w8 &<< 15)) ^ ((w8 &>> 19) | (w8 &<< 13))
        x ^= w8 &>> 10
        y = ((w11 &>> 7) | (w11 &<< 25)) ^ ((w11 &>> 18) | (w11 &<< 14))
        y ^= w11 &>> 3
        w10 = w10 &+ x &+ w3 &+ y
        x = ((c &>> 6) | (c &<< 26)) ^ ((c &>> 11) | (c &<< 21))
        x ^= ((c &>> 25) | (c &<< 7))
        y = (c & d) ^ (~c & e)
        f = f &+ x &+ y &+ 0xb00327c8 &+ w10
        b = b &+ f
        x = ((g &>> 2) | (g &<< 30)) ^ ((g &>> 13) | (g &<< 19))
        x ^= ((g &>> 22) | (g &<< 10))
        y = (g & h) ^ (g & a) ^ (h & a)
        f = f &+ x &+ y
        // round 27
        x = ((w9 &>> 17) | (w9 &<< 15)) ^ ((w9 &>> 19) | (w9 &<< 13))
        x ^= w9 &>> 10
        y = ((w12 &>> 7) | (w12 &<< 25)) ^ ((w12 &>> 18) | (w12 &<< 14))
        y ^= w12 &>> 3
        w11 = w11 &+ x &+ w4 &+ y
        x = ((b &>> 6) | (b &<< 26)) ^ ((b &>> 11) | (b &<< 21))
        x ^= ((b &>> 25) | (b &<< 7))
        y = (b & c) ^ (~b & d)
        e = e &+ x &+ y &+ 0xbf597fc7 &+ w11
        a = a &+ e
        x = ((f &>> 2) | (f &<< 30)) ^ ((f &>> 13) | (f &<< 19))
        x ^= ((f &>> 22) | (f &<< 10))
        y = (f & g) ^ (f & h) ^ (g & h)
        e = e &+ x &+ y
        // round 28
        x = ((w10 &>> 17) | (w10 &<< 15)) ^ ((w10 &>> 19) | (w10 &<< 13))
        x ^= w10 &>> 10
        y = ((w13 &>> 7) | (w13 &<< 25)) ^ ((w13 &>> 18) | (w13 &<< 14))
        y ^= w13 &>> 3
        w12 = w12 &+ x &+ w5 &+ y
        x = ((a &>> 6) | (a &<< 26)) ^ ((a &>> 11) | (a &<< 21))
        x ^= ((a &>> 25) | (a &<< 7))
        y = (a & b) ^ (~a & c)
        d = d &+ x &+ y &+ 0xc6e00bf3 &+ w12
        h = h &+ d
        x = ((e &>> 2) | (e &<< 30)) ^ ((e &>> 13) | (e &<< 19))
        x ^= ((e &>> 22) | (e &<< 10))
        y = (e & f) ^ (e & g) ^ (f & g)
        d = d &+ x &+ y
        // round 29
        x = ((w11 &>> 17) | (w11 &<< 15)) ^ ((w11 &>> 19) | (w11 &<< 13))
        x ^= w11 &>> 10
        y = ((w14 &>> 7) | (w14 &<< 25)) ^ ((w14 &>> 18) | (w14 &<< 14))
        y ^= w14 &>> 3
        w13 = w13 &+ x &+ w6 &+ y
        x = ((h &>> 6) | (h &<< 26)) ^ ((h &>> 11) | (h &<< 21))
        x ^= ((h &>> 25) | (h &<< 7))
        y = (h & a) ^ (~h & b)
        c = c &+ x &+ y &+ 0xd5a79147 &+ w13
        g = g &+ c
        x = ((d &>> 2) | (d &<< 30)) ^ ((d &>> 13) | (d &<< 19))
        x ^= ((d &>> 22) | (d &<< 10))
        y = (d & e) ^ (d & f) ^ (e & f)
        c = c &+ x &+ y
        // round 30
        x = ((w12 &>> 17) | (w12 &<< 15)) ^ ((w12 &>> 19) | (w12 &<< 13))
        x ^= w12 &>> 10
        y = ((w15 &>> 7) | (w15 &<< 25)) ^ ((w15 &>> 18) | (w15 &<< 14))
        y ^= w15 &>> 3
        w14 = w14 &+ x &+ w7 &+ y
        x = ((g &>> 6) | (g &<< 26)) ^ ((g &>> 11) | (g &<< 21))
        x ^= ((g &>> 25) | (g &<< 7))
        y = (g & h) ^ (~g & a)
        b = b &+ x &+ y &+ 0x06ca6351 &+ w14
        f = f &+ b
        x = ((c &>> 2) | (c &<< 30)) ^ ((c &>> 13) | (c &<< 19))
        x ^= ((c &>> 22) | (c &<< 10))
        y = (c & d) ^ (c & e) ^ (d & e)
        b = b &+ x &+ y
        // round 31
        x = ((w13 &>> 17) | (w13 &<< 15)) ^ ((w13 &>> 19) | (w13 &<< 13))
        x ^= w13 &>> 10
        y = ((w0 &>> 7) | (w0 &<< 25)) ^ ((w0 &>> 18) | (w0 &<< 14))
        y ^= w0 &>> 3
        w15 = w15 &+ x &+ w8 &+ y
        x = ((f &>> 6) | (f &<< 26)) ^ ((f &>> 11) | (f &<< 21))
        x ^= ((f &>> 25) | (f &<< 7))
        y = (f & g) ^ (~f & h)
        a = a &+ x &+ y &+ 0x14292967 &+ w15
        e = e &+ a
        x = ((b &>> 2) | (b &<< 30)) ^ ((b &>> 13) | (b &<< 19))
        x ^= ((b &>> 22) | (b &<< 10))
        y = (b & c) ^ (b & d) ^ (c & d)
        a = a &+ x &+ y
        // round 32
        x = ((w14 &>> 17) | (w14 &<< 15)) ^ ((w14 &>> 19) | (w14 &<< 13))
        x ^= w14 &>> 10
        y = ((w1 &>> 7) | (w1 &<< 25)) ^ ((w1 &>> 18) | (w1 &<< 14))
        y ^= w1 &>> 3
        w0 = w0 &+ x &+ w9 &+ y
        x = ((e &>> 6) | (e &<< 26)) ^ ((e &>> 11) | (e &<< 21))
        x ^= ((e &>> 25) | (e &<< 7))
        y = (e & f) ^ (~e & g)
        h = h &+ x &+ y &+ 0x27b70a85 &+ w0
        d = d &+ h
        x = ((a &>> 2) | (a &<< 30)) ^ ((a &>> 13) | (a &<< 19))
        x ^= ((a &>> 22) | (a &<< 10))
        y = (a & b) ^ (a & c) ^ (b & c)
        h = h &+ x &+ y
        // round 33
        x = ((w15 &>> 17) | (w15 &<< 15)) ^ ((w15 &>> 19) | (w15 &<< 13))
        x ^= w15 &>> 10
        y = ((w2 &>> 7) | (w2 &<< 25)) ^ ((w2 &>> 18) | (w2 &<< 14))
        y ^= w2 &>> 3
        w1 = w1 &+ x &+ w10 &+ y
        x = ((d &>> 6) | (d &<< 26)) ^ ((d &>> 11) | (d &<< 21))
        x ^= ((d &>> 25) | (d &<< 7))
        y = (d & e) ^ (~d & f)
        g = g &+ x &+ y &+ 0x2e1b2138 &+ w1
        c = c &+ g
        x = ((h &>> 2) | (h &<< 30)) ^ ((h &>> 13) | (h &<< 19))
        x ^= ((h &>> 22) | (h &<< 10))
        y = (h & a) ^ (h & b) ^ (a & b)
        g = g &+ x &+ y
        // round 34
        x = ((w0 &>> 17) | (w0 &<< 15)) ^ ((w0 &>> 19) | (w0 &<< 13))
        x ^= w0 &>> 10
        y = ((w3 &>> 7) | (w3 &<< 25)) ^ ((w3 &>> 18) | (w3 &<< 14))
        y ^= w3 &>> 3
        w2 = w2 &+ x &+ w11 &+ y
        x = ((c &>> 6) | (c &<< 26)) ^ ((c &>> 11) | (c &<< 21))
        x ^= ((c &>> 25) | (c &<< 7))
        y = (c & d) ^ (~c & e)
        f = f &+ x &+ y &+ 0x4d2c6dfc &+ w2
        b = b &+ f
        x = ((g &>> 2) | (g &<< 30)) ^ ((g &>> 13) | (g &<< 19))
        x ^= ((g &>> 22) | (g &<< 10))
        y = (g & h) ^ (g & a) ^ (h & a)
        f = f &+ x &+ y
        // round 35
        x = ((w1 &>> 17) | (w1 &<< 15)) ^ ((w1 &>> 19) | (w1 &<< 13))
        x ^= w1 &>> 10
        y = ((w4 &>> 7) | (w4 &<< 25)) ^ ((w4 &>> 18) | (w4 &<< 14))
        y ^= w4 &>> 3
        w3 = w3 &+ x &+ w12 &+ y
        x = ((b &>> 6) | (b &<< 26)) ^ ((b &>> 11) | (b &<< 21))
        x ^= ((b &>> 25) | (b &<< 7))
        y = (b & c) ^ (~b & d)
        e = e &+ x &+ y &+ 0x53380d13 &+ w3
        a = a &+ e
        x = ((f &>> 2) | (f &<< 30)) ^ ((f &>> 13) | (f &<< 19))
        x ^= ((f &>> 22) | (f &<< 10))
        y = (f & g) ^ (f & h) ^ (g & h)
        e = e &+ x &+ y
        // round 36
        x = ((w2 &>> 17) | (w2 &<< 15)) ^ ((w2 &>> 19) | (w2 &<< 13))
        x ^= w2 &>> 10
        y = ((w5 &>> 7) | (w5 &<< 25)) ^ ((w5 &>> 18) | (w5 &<< 14))
        y ^= w5 &>> 3
        w4 = w4 &+ x &+ w13 &+ y
        x = ((a &>> 6) | (a &<< 26)) ^ ((a &>> 11) | (a &<< 21))
        x ^= ((a &>> 25) | (a &<< 7))
        y = (a & b) ^ (~a & c)
        d = d &+ x &+ y &+ 0x650a7354 &+ w4
        h = h &+ d
        x = ((e &>> 2) | (e &<< 30)) ^ ((e &>> 13) | (e &<< 19))
        x ^= ((e &>> 22) | (e &<< 10))
        y = (e & f) ^ (e & g) ^ (f & g)
        d = d &+ x &+ y
        // round 37
        x = ((w3 &>> 17) | (w3 &<< 15)) ^ ((w3 &>> 19) | (w3 &<< 13))
        x ^= w3 &>> 10
        y = ((w6 &>> 7) | (w6 &<< 25)) ^ ((w6 &>> 18) | (w6 &<< 14))
        y ^= w6 &>> 3
        w5 = w5 &+ x &+ w14 &+ y
        x = ((h &>> 6) | (h &<< 26)) ^ ((h &>> 11) | (h &<< 21))
        x ^= ((h &>> 25) | (h &<< 7))
        y = (h & a) ^ (~h & b)
        c = c &+ x &+ y &+ 0x766a0abb &+ w5
        g = g &+ c
        x = ((d &>> 2) | (d &<< 30)) ^ ((d &>> 13) | (d &<< 19))
        x ^= ((d &>> 22) | (d &<< 10))
        y = (d & e) ^ (d & f) ^ (e & f)
        c = c &+ x &+ y
        // round 38
        x = ((w4 &>> 17) | (w4 &<< 15)) ^ ((w4 &>> 19) | (w4 &<< 13))
        x ^= w4 &>> 10
        y = ((w7 &>> 7) | (w7 &<< 25)) ^ ((w7 &>> 18) | (w7 &<< 14))
        y ^= w7 &>> 3
        w6 = w6 &+ x &+ w15 &+ y
        x = ((g &>> 6) | (g &<< 26)) ^ ((g &>> 11) | (g &<< 21))
        x ^= ((g &>> 25) | (g &<< 7))
        y = (g & h) ^ (~g & a)
        b = b &+ x &+ y &+ 0x81c2c92e &+ w6
        f = f &+ b
        x = ((c &>> 2) | (c &<< 30)) ^ ((c &>> 13) | (c &<< 19))
        x ^= ((c &>> 22) | (c &<< 10))
        y = (c & d) ^ (c & e) ^ (d & e)
        b = b &+ x &+ y
        // round 39
        x = ((w5 &>> 17) | (w5 &<< 15)) ^ ((w5 &>> 19) | (w5 &<< 13))
        x ^= w5 &>> 10
        y = ((w8 &>> 7) | (w8 &<< 25)) ^ ((w8 &>> 18) | (w8 &<< 14))
        y ^= w8 &>> 3
        w7 = w7 &+ x &+ w0 &+ y
        x = ((f &>> 6) | (f &<< 26)) ^ ((f &>> 11) | (f &<< 21))
        x ^= ((f &>> 25) | (f &<< 7))
        y = (f & g) ^ (~f & h)
        a = a &+ x &+ y &+ 0x92722c85 &+ w7
        e = e &+ a
        x = ((b &>> 2) | (b &<< 30)) ^ ((b &>> 13) | (b &<< 19))
        x ^= ((b &>> 22) | (b &<< 10))
        y = (b & c) ^ (b & d) ^ (c & d)
        a = a &+ x &+ y
        // round 40
        x = ((w6 &>> 17) | (w6 &<< 15)) ^ ((w6 &>> 19) | (w6 &<< 13))
        x ^= w6 &>> 10
        y = ((w9 &>> 7) | (w9 &<< 25)) ^ ((w9 &>> 18) | (w9 &<< 14))
        y ^= w9 &>> 3
        w8 = w8 &+ x &+ w1 &+ y
        x = ((e &>> 6) | (e &<< 26)) ^ ((e &>> 11) | (e &<< 21))
        x ^= ((e &>> 25) | (e &<< 7))
        y = (e & f) ^ (~e & g)
        h = h &+ x &+ y &+ 0xa2bfe8a1 &+ w8
        d = d &+ h
        x = ((a &>> 2) | (a &<< 30)) ^ ((a &>> 13) | (a &<< 19))
        x ^= ((a &>> 22) | (a &<< 10))
        y = (a & b) ^ (a & c) ^ (b & c)
        h = h &+ x &+ y
        // round 41
        x = ((w7 &>> 17) | (w7 &<< 15)) ^ ((w7 &>> 19) | (w7 &<< 13))
        x ^= w7 &>> 10
        y = ((w10 &>> 7) | (w10 &<< 25)) ^ ((w10 &>> 18) | (w10 &<< 14))
        y ^= w10 &>> 3
        w9 = w9 &+ x &+ w2 &+ y
        x = ((d &>> 6) | (d &<< 26)) ^ ((d &>> 11) | (d &<< 21))
        x ^= ((d &>> 25) | (d &<< 7))
        y = (d & e) ^ (~d & f)
        g = g &+ x &+ y &+ 0xa81a664b &+ w9
        c = c &+ g
        x = ((h &>> 2) | (h &<< 30)) ^ ((h &>> 13) | (h &<< 19))
        x ^= ((h &>> 22) | (h &<< 10))
        y = (h & a) ^ (h & b) ^ (a & b)
        g = g &+ x &+ y
        // round 42
        x = ((w8 &>> 17) | (w8 &<< 15)) ^ ((w8 &>> 19) | (w8 &<< 13))
        x ^= w8 &>> 10
        y = ((w11 &>> 7) | (w11 &<< 25)) ^ ((w11 &>> 18) | (w11 &<< 14))
        y ^= w11 &>> 3
        w10 = w10 &+ x &+ w3 &+ y
        x = ((c &>> 6) | (c &<< 26)) ^ ((c &>> 11) | (c &<< 21))
        x ^= ((c &>> 25) | (c &<< 7))
        y = (c & d) ^ (~c & e)
        f = f &+ x &+ y &+ 0xc24b8b70 &+ w10
        b = b &+ f
        x = ((g &>> 2) | (g &<< 30)) ^ ((g &>> 13) | (g &<< 19))
        x ^= ((g &>> 22) | (g &<< 10))
        y = (g & h) ^ (g & a) ^ (h & a)
        f = f &+ x &+ y
        // round 43
        x = ((w9 &>> 17) | (w9 &<< 15)) ^ ((w9 &>> 19) | (w9 &<< 13))
        x ^= w9 &>> 10
        y = ((w12 &>> 7) | (w12 &<< 25)) ^ ((w12 &>> 18) | (w12 &<< 14))
        y ^= w12 &>> 3
        w11 = w11 &+ x &+ w4 &+ y
        x = ((b &>> 6) | (b &<< 26)) ^ ((b &>> 11) | (b &<< 21))
        x ^= ((b &>> 25) | (b &<< 7))
        y = (b & c) ^ (~b & d)
        e = e &+ x &+ y &+ 0xc76c51a3 &+ w11
        a = a &+ e
        x = ((f &>> 2) | (f &<< 30)) ^ ((f &>> 13) | (f &<< 19))
        x ^= ((f &>> 22) | (f &<< 10))
        y = (f & g) ^ (f & h) ^ (g & h)
        e = e &+ x &+ y
        // round 44
        x = ((w10 &>> 17) | (w10 &<< 15)) ^ ((w10 &>> 19) | (w10 &<< 13))
        x ^= w10 &>> 10
        y = ((w13 &>> 7) | (w13 &<< 25)) ^ ((w13 &>> 18) | (w13 &<< 14))
        y ^= w13 &>> 3
        w12 = w12 &+ x &+ w5 &+ y
        x = ((a &>> 6) | (a &<< 26)) ^ ((a &>> 11) | (a &<< 21))
        x ^= ((a &>> 25) | (a &<< 7))
        y = (a & b) ^ (~a & c)
        d = d &+ x &+ y &+ 0xd192e819 &+ w12
        h = h &+ d
        x = ((e &>> 2) | (e &<< 30)) ^ ((e &>> 13) | (e &<< 19))
        x ^= ((e &>> 22) | (e &<< 10))
        y = (e & f) ^ (e & g) ^ (f & g)
        d = d &+ x &+ y
        // round 45
        x = ((w11 &>> 17) | (w11 &<< 15)) ^ ((w11 &>> 19) | (w11 &<< 13))
        x ^= w11 &>> 10
        y = ((w14 &>> 7) | (w14 &<< 25)) ^ ((w14 &>> 18) | (w14 &<< 14))
        y ^= w14 &>> 3
        w13 = w13 &+ x &+ w6 &+ y
        x = ((h &>> 6) | (h &<< 26)) ^ ((h &>> 11) | (h &<< 21))
        x ^= ((h &>> 25) | (h &<< 7))
        y = (h & a) ^ (~h & b)
        c = c &+ x &+ y &+ 0xd6990624 &+ w13
        g = g &+ c
        x = ((d &>> 2) | (d &<< 30)) ^ ((d &>> 13) | (d &<< 19))
        x ^= ((d &>> 22) | (d &<< 10))
        y = (d & e) ^ (d & f) ^ (e & f)
        c = c &+ x &+ y
        // round 46
        x = ((w12 &>> 17) | (w12 &<< 15)) ^ ((w12 &>> 19) | (w12 &<< 13))
        x ^= w12 &>> 10
        y = ((w15 &>> 7) | (w15 &<< 25)) ^ ((w15 &>> 18) | (w15 &<< 14))
        y ^= w15 &>> 3
        w14 = w14 &+ x &+ w7 &+ y
        x = ((g &>> 6) | (g &<< 26)) ^ ((g &>> 11) | (g &<< 21))
        x ^= ((g &>> 25) | (g &<< 7))
        y = (g & h) ^ (~g & a)
        b = b &+ x &+ y &+ 0xf40e3585 &+ w14
        f = f &+ b
        x = ((c &>> 2) | (c &<< 30)) ^ ((c &>> 13) | (c &<< 19))
        x ^= ((c &>> 22) | (c &<< 10))
        y = (c & d) ^ (c & e) ^ (d & e)
        b = b &+ x &+ y
        // round 47
        x = ((w13 &>> 17) | (w13 &<< 15)) ^ ((w13 &>> 19) | (w13 &<< 13))
        x ^= w13 &>> 10
        y = ((w0 &>> 7) | (w0 &<< 25)) ^ ((w0 &>> 18) | (w0 &<< 14))
        y ^= w0 &>> 3
        w15 = w15 &+ x &+ w8 &+ y
        x = ((f &>> 6) | (f &<< 26)) ^ ((f &>> 11) | (f &<< 21))
        x ^= ((f &>> 25) | (f &<< 7))
        y = (f & g) ^ (~f & h)
        a = a &+ x &+ y &+ 0x106aa070 &+ w15
        e = e &+ a
        x = ((b &>> 2) | (b &<< 30)) ^ ((b &>> 13) | (b &<< 19))
        x ^= ((b &>> 22) | (b &<< 10))
        y = (b & c) ^ (b & d) ^ (c & d)
        a = a &+ x &+ y
        // round 48
        x = ((w14 &>> 17) | (w14 &<< 15)) ^ ((w14 &>> 19) | (w14 &<< 13))
        x ^= w14 &>> 10
        y = ((w1 &>> 7) | (w1 &<< 25)) ^ ((w1 &>> 18) | (w1 &<< 14))
        y ^= w1 &>> 3
        w0 = w0 &+ x &+ w9 &+ y
        x = ((e &>> 6) | (e &<< 26)) ^ ((e &>> 11) | (e &<< 21))
        x ^= ((e &>> 25) | (e &<< 7))
        y = (e & f) ^ (~e & g)
        h = h &+ x &+ y &+ 0x19a4c116 &+ w0
        d = d &+ h
        x = ((a &>> 2) | (a &<< 30)) ^ ((a &>> 13) | (a &<< 19))
        x ^= ((a &>> 22) | (a &<< 10))
        y = (a & b) ^ (a & c) ^ (b & c)
        h = h &+ x &+ y
        // round 49
        x = ((w15 &>> 17) | (w15 &<< 15)) ^ ((w15 &>> 19) | (w15 &<< 13))
        x ^= w15 &>> 10
        y = ((w2 &>> 7) | (w2 &<< 25)) ^ ((w2 &>> 18) | (w2 &<< 14))
        y ^= w2 &>> 3
        w1 = w1 &+ x &+ w10 &+ y
        x = ((d &>> 6) | (d &<< 26)) ^ ((d &>> 11) | (d &<< 21))
        x ^= ((d &>> 25) | (d &<< 7))
        y = (d & e) ^ (~d & f)
        g = g &+ x &+ y &+ 0x1e376c08 &+ w1
        c = c &+ g
        x = ((h &>> 2) | (h &<< 30)) ^ ((h &>> 13) | (h &<< 19))
        x ^= ((h &>> 22) | (h &<< 10))
        y = (h & a) ^ (h & b) ^ (a & b)
        g = g &+ x &+ y
        // round 50
        x = ((w0 &>> 17) | (w0 &<< 15)) ^ ((w0 &>> 19) | (w0 &<< 13))
        x ^= w0 &>> 10
        y = ((w3 &>> 7) | (w3 &<< 25)) ^ ((w3 &>> 18) | (w3 &<< 14))
        y ^= w3 &>> 3
        w2 = w2 &+ x &+ w11 &+ y
        x = ((c &>> 6) | (c &<< 26)) ^ ((c &>> 11) | (c &<< 21))
        x ^= ((c &>> 25) | (c &<< 7))
        y = (c & d) ^ (~c & e)
        f = f &+ x &+ y &+ 0x2748774c &+ w2
        b = b &+ f
        x = ((g &>> 2) | (g &<< 30)) ^ ((g &>> 13) | (g &<< 19))
        x ^= ((g &>> 22) | (g &<< 10))
        y = (g & h) ^ (g & a) ^ (h & a)
        f = f &+ x &+ y
        // round 51
        x = ((w1 &>> 17) | (w1 &<< 15)) ^ ((w1 &>> 19) | (w1 &<< 13))
        x ^= w1 &>> 10
        y = ((w4 &>> 7) | (w4 &<< 25)) ^ ((w4 &>> 18) | (w4 &<< 14))
        y ^= w4 &>> 3
        w3 = w3 &+ x &+ w12 &+ y
        x = ((b &>> 6) | (b &<< 26)) ^ ((b &>> 11) | (b &<< 21))
        x ^= ((b &>> 25) | (b &<< 7))
        y = (b & c) ^ (~b & d)
        e = e &+ x &+ y &+ 0x34b0bcb5 &+ w3
        a = a &+ e
        x = ((f &>> 2) | (f &<< 30)) ^ ((f &>> 13) | (f &<< 19))
        x ^= ((f &>> 22) | (f &<< 10))
        y = (f & g) ^ (f & h) ^ (g & h)
        e = e &+ x &+ y
        // round 52
        x = ((w2 &>> 17) | (w2 &<< 15)) ^ ((w2 &>> 19) | (w2 &<< 13))
        x ^= w2 &>> 10
        y = ((w5 &>> 7) | (w5 &<< 25)) ^ ((w5 &>> 18) | (w5 &<< 14))
        y ^= w5 &>> 3
        w4 = w4 &+ x &+ w13 &+ y
        x = ((a &>> 6) | (a &<< 26)) ^ ((a &>> 11) | (a &<< 21))
        x ^= ((a &>> 25) | (a &<< 7))
        y = (a & b) ^ (~a & c)
        d = d &+ x &+ y &+ 0x391c0cb3 &+ w4
        h = h &+ d
        x = ((e &>> 2) | (e &<< 30)) ^ ((e &>> 13) | (e &<< 19))
        x ^= ((e &>> 22) | (e &<< 10))
        y = (e & f) ^ (e & g) ^ (f & g)
        d = d &+ x &+ y
        // round 53
        x = ((w3 &>> 17) | (w3 &<< 15)) ^ ((w3 &>> 19) | (w3 &<< 13))
        x ^= w3 &>> 10
        y = ((w6 &>> 7) | (w6 &<< 25)) ^ ((w6 &>> 18) | (w6 &<< 14))
        y ^= w6 &>> 3
        w5 = w5 &+ x &+ w14 &+ y
        x = ((h &>> 6) | (h &<< 26)) ^ ((h &>> 11) | (h &<< 21))
        x ^= ((h &>> 25) | (h &<< 7))
        y = (h & a) ^ (~h & b)
        c = c &+ x &+ y &+ 0x4ed8aa4a &+ w5
        g = g &+ c
        x = ((d &>> 2) | (d &<< 30)) ^ ((d &>> 13) | (d &<< 19))
        x ^= ((d &>> 22) | (d &<< 10))
        y = (d & e) ^ (d & f) ^ (e & f)
        c = c &+ x &+ y
        // round 54
        x = ((w4 &>> 17) | (w4 &<< 15)) ^ ((w4 &>> 19) | (w4 &<< 13))
        x ^= w4 &>> 10
        y = ((w7 &>> 7) | (w7 &<< 25)) ^ ((w7 &>> 18) | (w7 &<< 14))
        y ^= w7 &>> 3
        w6 = w6 &+ x &+ w15 &+ y
        x = ((g &>> 6) | (g &<< 26)) ^ ((g &>> 11) | (g &<< 21))
        x ^= ((g &>> 25) | (g &<< 7))
        y = (g & h) ^ (~g & a)
        b = b &+ x &+ y &+ 0x5b9cca4f &+ w6
        f = f &+ b
        x = ((c &>> 2) | (c &<< 30)) ^ ((c &>> 13) | (c &<< 19))
        x ^= ((c &>> 22) | (c &<< 10))
        y = (c & d) ^ (c & e) ^ (d & e)
        b = b &+ x &+ y
        // round 55
        x = ((w5 &>> 17) | (w5 &<< 15)) ^ ((w5 &>> 19) | (w5 &<< 13))
        x ^= w5 &>> 10
        y = ((w8 &>> 7) | (w8 &<< 25)) ^ ((w8 &>> 18) | (w8 &<< 14))
        y ^= w8 &>> 3
        w7 = w7 &+ x &+ w0 &+ y
        x = ((f &>> 6) | (f &<< 26)) ^ ((f &>> 11) | (f &<< 21))
        x ^= ((f &>> 25) | (f &<< 7))
        y = (f & g) ^ (~f & h)
        a = a &+ x &+ y &+ 0x682e6ff3 &+ w7
        e = e &+ a
        x = ((b &>> 2) | (b &<< 30)) ^ ((b &>> 13) | (b &<< 19))
        x ^= ((b &>> 22) | (b &<< 10))
        y = (b & c) ^ (b & d) ^ (c & d)
        a = a &+ x &+ y
        // round 56
        x = ((w6 &>> 17) | (w6 &<< 15)) ^ ((w6 &>> 19) | (w6 &<< 13))
        x ^= w6 &>> 10
        y = ((w9 &>> 7) | (w9 &<< 25)) ^ ((w9 &>> 18) | (w9 &<< 14))
        y ^= w9 &>> 3
        w8 = w8 &+ x &+ w1 &+ y
        x = ((e &>> 6) | (e &<< 26)) ^ ((e &>> 11) | (e &<< 21))
        x ^= ((e &>> 25) | (e &<< 7))
        y = (e & f) ^ (~e & g)
        h = h &+ x &+ y &+ 0x748f82ee &+ w8
        d = d &+ h
        x = ((a &>> 2) | (a &<< 30)) ^ ((a &>> 13) | (a &<< 19))
        x ^= ((a &>> 22) | (a &<< 10))
        y = (a & b) ^ (a & c) ^ (b & c)
        h = h &+ x &+ y
        // round 57
        x = ((w7 &>> 17) | (w7 &<< 15)) ^ ((w7 &>> 19) | (w7 &<< 13))
        x ^= w7 &>> 10
        y = ((w10 &>> 7) | (w10 &<< 25)) ^ ((w10 &>> 18) | (w10 &<< 14))
        y ^= w10 &>> 3
        w9 = w9 &+ x &+ w2 &+ y
        x = ((d &>> 6) | (d &<< 26)) ^ ((d &>> 11) | (d &<< 21))
        x ^= ((d &>> 25) | (d &<< 7))
        y = (d & e) ^ (~d & f)
        g = g &+ x &+ y &+ 0x78a5636f &+ w9
        c = c &+ g
        x = ((h &>> 2) | (h &<< 30)) ^ ((h &>> 13) | (h &<< 19))
        x ^= ((h &>> 22) | (h &<< 10))
        y = (h & a) ^ (h & b) ^ (a & b)
        g = g &+ x &+ y
        // round 58
        x = ((w8 &>> 17) | (w8 &<< 15)) ^ ((w8 &>> 19) | (w8 &<< 13))
        x ^= w8 &>> 10
        y = ((w11 &>> 7) | (w11 &<< 25)) ^ ((w11 &>> 18) | (w11 &<< 14))
        y ^= w11 &>> 3
        w10 = w10 &+ x &+ w3 &+ y
        x = ((c &>> 6) | (c &<< 26)) ^ ((c &>> 11) | (c &<< 21))
        x ^= ((c &>> 25) | (c &<< 7))
        y = (c & d) ^ (~c & e)
        f = f &+ x &+ y &+ 0x84c87814 &+ w10
        b = b &+ f
        x = ((g &>> 2) | (g &<< 30)) ^ ((g &>> 13) | (g &<< 19))
        x ^= ((g &>> 22) | (g &<< 10))
        y = (g & h) ^ (g & a) ^ (h & a)
        f = f &+ x &+ y
        // round 59
        x = ((w9 &>> 17) | (w9 &<< 15)) ^ ((w9 &>> 19) | (w9 &<< 13))
        x ^= w9 &>> 10
        y = ((w12 &>> 7) | (w12 &<< 25)) ^ ((w12 &>> 18) | (w12 &<< 14))
        y ^= w12 &>> 3
        w11 = w11 &+ x &+ w4 &+ y
        x = ((b &>> 6) | (b &<< 26)) ^ ((b &>> 11) | (b &<< 21))
        x ^= ((b &>> 25) | (b &<< 7))
        y = (b & c) ^ (~b & d)
        e = e &+ x &+ y &+ 0x8cc70208 &+ w11
        a = a &+ e
        x = ((f &>> 2) | (f &<< 30)) ^ ((f &>> 13) | (f &<< 19))
        x ^= ((f &>> 22) | (f &<< 10))
        y = (f & g) ^ (f & h) ^ (g & h)
        e = e &+ x &+ y
        // round 60
        x = ((w10 &>> 17) | (w10 &<< 15)) ^ ((w10 &>> 19) | (w10 &<< 13))
        x ^= w10 &>> 10
        y = ((w13 &>> 7) | (w13 &<< 25)) ^ ((w13 &>> 18) | (w13 &<< 14))
        y ^= w13 &>> 3
        w12 = w12 &+ x &+ w5 &+ y
        x = ((a &>> 6) | (a &<< 26)) ^ ((a &>> 11) | (a &<< 21))
        x ^= ((a &>> 25) | (a &<< 7))
        y = (a & b) ^ (~a & c)
        d = d &+ x &+ y &+ 0x90befffa &+ w12
        h = h &+ d
        x = ((e &>> 2) | (e &<< 30)) ^ ((e &>> 13) | (e &<< 19))
        x ^= ((e &>> 22) | (e &<< 10))
        y = (e & f) ^ (e & g) ^ (f & g)
        d = d &+ x &+ y
        // round 61
        x = ((w11 &>> 17) | (w11 &<< 15)) ^ ((w11 &>> 19) | (w11 &<< 13))
        x ^= w11 &>> 10
        y = ((w14 &>> 7) | (w14 &<< 25)) ^ ((w14 &>> 18) | (w14 &<< 14))
        y ^= w14 &>> 3
        w13 = w13 &+ x &+ w6 &+ y
        x = ((h &>> 6) | (h &<< 26)) ^ ((h &>> 11) | (h &<< 21))
        x ^= ((h &>> 25) | (h &<< 7))
        y = (h & a) ^ (~h & b)
        c = c &+ x &+ y &+ 0xa4506ceb &+ w13
        g = g &+ c
        x = ((d &>> 2) | (d &<< 30)) ^ ((d &>> 13) | (d &<< 19))
        x ^= ((d &>> 22) | (d &<< 10))
        y = (d & e) ^ (d & f) ^ (e & f)
        c = c &+ x &+ y
        // round 62
        x = ((w12 &>> 17) | (w12 &<< 15)) ^ ((w12 &>> 19) | (w12 &<< 13))
        x ^= w12 &>> 10
        y = ((w15 &>> 7) | (w15 &<< 25)) ^ ((w15 &>> 18) | (w15 &<< 14))
        y ^= w15 &>> 3
        w14 = w14 &+ x &+ w7 &+ y
        x = ((g &>> 6) | (g &<< 26)) ^ ((g &>> 11) | (g &<< 21))
        x ^= ((g &>> 25) | (g &<< 7))
        y = (g & h) ^ (~g & a)
        b = b &+ x &+ y &+ 0xbef9a3f7 &+ w14
        f = f &+ b
        x = ((c &>> 2) | (c &<< 30)) ^ ((c &>> 13) | (c &<< 19))
        x ^= ((c &>> 22) | (c &<< 10))
        y = (c & d) ^ (c & e) ^ (d & e)
        b = b &+ x &+ y
        // round 63
        x = ((w13 &>> 17) | (w13 &<< 15)) ^ ((w13 &>> 19) | (w13 &<< 13))
        x ^= w13 &>> 10
        y = ((w0 &>> 7) | (w0 &<< 25)) ^ ((w0 &>> 18) | (w0 &<< 14))
        y ^= w0 &>> 3
        w15 = w15 &+ x &+ w8 &+ y
        x = ((f &>> 6) | (f &<< 26)) ^ ((f &>> 11) | (f &<< 21))
        x ^= ((f &>> 25) | (f &<< 7))
        y = (f & g) ^ (~f & h)
        a = a &+ x &+ y &+ 0xc67178f2 &+ w15
        e = e &+ a
        x = ((b &>> 2) | (b &<< 30)) ^ ((b &>> 13) | (b &<< 19))
        x ^= ((b &>> 22) | (b &<< 10))
        y = (b & c) ^ (b & d) ^ (c & d)
        a = a &+ x &+ y
        h0 = h0 &+ a
        h1 = h1 &+ b
        h2 = h2 &+ c
        h3 = h3 &+ d
        h4 = h4 &+ e
        h5 = h5 &+ f
        h6 = h6 &+ g
        h7 = h7 &+ h
    }
}
