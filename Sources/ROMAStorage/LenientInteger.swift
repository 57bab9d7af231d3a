/// Ruby `String#to_i` semantics for protocol numbers and stored counters (spec R2.4, R3.11):
/// optional leading whitespace, optional sign, the leading run of digits (single underscores
/// allowed between digits), anything else ignored; no digits → 0. Arbitrary precision.
public struct LenientInteger: Equatable, Sendable {
    public var negative: Bool
    /// Magnitude, little-endian base 2^32 limbs, no trailing zero limbs.
    public var magnitude: [UInt32]

    public init(_ value: Int64) {
        negative = value < 0
        var m = value.magnitude
        magnitude = []
        while m > 0 { magnitude.append(UInt32(truncatingIfNeeded: m)); m >>= 32 }
    }

    public init(negative: Bool, magnitude: [UInt32]) {
        var mag = magnitude
        while mag.last == 0 { mag.removeLast() }
        self.negative = negative && !mag.isEmpty
        self.magnitude = mag
    }

    /// Parses like Ruby `to_i`.
    public init<C: Collection>(parsing bytes: C) where C.Element == UInt8 {
        var i = bytes.startIndex
        while i != bytes.endIndex, [0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d].contains(bytes[i]) { i = bytes.index(after: i) }
        var neg = false
        if i != bytes.endIndex, bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: "+") {
            neg = bytes[i] == UInt8(ascii: "-")
            i = bytes.index(after: i)
        }
        var mag: [UInt32] = []
        var small: UInt64 = 0
        var smallDigits = 0
        var lastWasDigit = false
        func flush() {
            guard smallDigits > 0 else { return }
            var p: UInt64 = 1
            for _ in 0..<smallDigits { p *= 10 }
            // mag = mag * p + small
            var carry = small
            for k in mag.indices {
                let v = UInt64(mag[k]) * p + carry
                mag[k] = UInt32(truncatingIfNeeded: v)
                carry = v >> 32
            }
            while carry > 0 { mag.append(UInt32(truncatingIfNeeded: carry)); carry >>= 32 }
            small = 0
            smallDigits = 0
        }
        while i != bytes.endIndex {
            let c = bytes[i]
            if c >= 0x30 && c <= 0x39 {
                small = small * 10 + UInt64(c - 0x30)
                smallDigits += 1
                if smallDigits == 9 { flush() }
                lastWasDigit = true
            } else if c == UInt8(ascii: "_") && lastWasDigit {
                let n = bytes.index(after: i)
                guard n != bytes.endIndex, bytes[n] >= 0x30 && bytes[n] <= 0x39 else { break }
                lastWasDigit = false
            } else {
                break
            }
            i = bytes.index(after: i)
        }
        flush()
        self.init(negative: neg, magnitude: mag)
    }

    /// The value clamped into Int64 (saturating).
    public var clampedInt64: Int64 {
        if magnitude.count > 2 { return negative ? .min : .max }
        var m: UInt64 = 0
        for (k, l) in magnitude.enumerated() { m |= UInt64(l) << (32 * UInt64(k)) }
        if negative { return m > UInt64(Int64.max) ? .min : -Int64(m) }
        return m > UInt64(Int64.max) ? .max : Int64(m)
    }

    /// Low 64 bits of the magnitude.
    public var low64: UInt64 {
        var m: UInt64 = 0
        for (k, l) in magnitude.prefix(2).enumerated() { m |= UInt64(l) << (32 * UInt64(k)) }
        return m
    }

    private static func compareMagnitude(_ a: [UInt32], _ b: [UInt32]) -> Int {
        if a.count != b.count { return a.count < b.count ? -1 : 1 }
        for k in stride(from: a.count - 1, through: 0, by: -1) where a[k] != b[k] { return a[k] < b[k] ? -1 : 1 }
        return 0
    }

    private static func addMagnitude(_ a: [UInt32], _ b: [UInt32]) -> [UInt32] {
        var out: [UInt32] = []
        var carry: UInt64 = 0
        for k in 0..<max(a.count, b.count) {
            let v = UInt64(k < a.count ? a[k] : 0) + UInt64(k < b.count ? b[k] : 0) + carry
            out.append(UInt32(truncatingIfNeeded: v))
            carry = v >> 32
        }
        if carry > 0 { out.append(UInt32(carry)) }
        return out
    }

    /// a − b for |a| ≥ |b|.
    private static func subMagnitude(_ a: [UInt32], _ b: [UInt32]) -> [UInt32] {
        var out: [UInt32] = []
        var borrow: Int64 = 0
        for k in 0..<a.count {
            var v = Int64(a[k]) - Int64(k < b.count ? b[k] : 0) - borrow
            if v < 0 { v += 1 << 32; borrow = 1 } else { borrow = 0 }
            out.append(UInt32(v))
        }
        return out
    }

    public static func + (l: LenientInteger, r: LenientInteger) -> LenientInteger {
        if l.negative == r.negative {
            return LenientInteger(negative: l.negative, magnitude: addMagnitude(l.magnitude, r.magnitude))
        }
        let c = compareMagnitude(l.magnitude, r.magnitude)
        if c == 0 { return LenientInteger(0) }
        if c > 0 { return LenientInteger(negative: l.negative, magnitude: subMagnitude(l.magnitude, r.magnitude)) }
        return LenientInteger(negative: r.negative, magnitude: subMagnitude(r.magnitude, l.magnitude))
    }

    public static prefix func - (v: LenientInteger) -> LenientInteger {
        LenientInteger(negative: !v.negative, magnitude: v.magnitude)
    }

    /// R3.11: `old ± n`, negative results become 0, then masked to 64 bits.
    public static func counterResult(old: LenientInteger, delta: LenientInteger, decrement: Bool) -> UInt64 {
        let r = old + (decrement ? -delta : delta)
        return r.negative ? 0 : r.low64
    }
}
