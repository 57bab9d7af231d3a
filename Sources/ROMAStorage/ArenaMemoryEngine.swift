#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The in-process engine (ROMA's `RubyHashStorage`) built for memory density and speed: records
/// live in slab-allocated arena pages and are found through an open-addressing index, so a put,
/// get or remove allocates nothing on the heap (except when a page, a large record or a bigger
/// index is needed).
///
/// **Arena.** Memory comes in pages of `pageSize` bytes (1 MiB by default), each carved into
/// equal slots of one size class. Classes grow geometrically (×1.25, multiples of 16 bytes) from
/// 32 bytes up to `pageSize / 8`, which bounds the unusable tail of a page to 1/8 of it; a record
/// larger than the largest class gets a dedicated `malloc` block of its exact size. A slot holds
/// `[u32 keyLen][u32 valueLen][key][value]` (native byte order). A slot's class follows from the
/// lengths it stores, so pages carry no metadata. Freed slots go on their class's intrusive free
/// list (the first 4 bytes link to the next free slot) and are reused before any new page; a
/// replacement whose record falls in the slot's class is written in place. A dedicated block is
/// freed as soon as its record goes; slab pages are returned to the system only by `close()` or
/// deinit (as in memcached, a page stays with its class: there is no rebalancing).
///
/// **Handles.** A slot is named by a 32-bit handle: `pageID << 16 | offset / 16`. Page IDs index a
/// table of page base addresses (ID 0 is never used, so no handle is 0); a large record uses a
/// page ID of its own. That caps an engine at 65 535 pages (64 GiB with 1 MiB pages).
///
/// **Index.** A power-of-two table of 64-bit entries `hash32 << 32 | handle` (0 = empty), linear
/// probing from `hash32 & mask`, grown ×2 above 3/4 load, shrunk below 1/8 load, with
/// backward-shift deletion (no tombstones). Because the entry keeps 32 hash bits, a probe reads a
/// record only when those bits match, and resizing and deletion never touch the records. The
/// hash is wyhash (`KeyHash`) with a per-engine random seed.
///
/// `@unchecked Sendable`: like every engine, it is used only with the owning division's lock
/// held (the storage never calls an engine outside it except `sync`, which is a no-op here), so
/// the arena and the index are never accessed concurrently.
public final class ArenaMemoryEngine: StorageEngine, @unchecked Sendable {
    /// The default arena page size (1 MiB, memcached's slab page size).
    public static let defaultPageSize = 1 << 20

    /// All mutable state, behind a pointer so hot paths pay no dynamic exclusivity checks.
    private let core: UnsafeMutablePointer<ArenaCore>

    /// An empty engine with 1 MiB pages.
    public convenience init() {
        self.init(pageSize: ArenaMemoryEngine.defaultPageSize)
    }

    /// An empty engine. `pageSize` must be a power of two from 4 KiB to 1 MiB (tests use small
    /// pages to exercise page turnover and dedicated large records).
    public init(pageSize: Int, seed: UInt64 = UInt64.random(in: 0 ... .max)) {
        precondition(pageSize >= 4096 && pageSize <= 1 << 20 && pageSize & (pageSize - 1) == 0,
                     "ArenaMemoryEngine page size must be a power of two in 4 KiB...1 MiB")
        core = .allocate(capacity: 1)
        core.initialize(to: ArenaCore(pageSize: pageSize, seed: seed))
    }

    deinit {
        core.pointee.releaseAll()
        core.deinitialize(count: 1)
        core.deallocate()
    }

    public var path: String? { nil }

    public func withValue<R>(forKey key: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer?) throws -> R) throws -> R {
        guard let p = core.pointee.lookup(key) else { return try body(nil) }
        return try body(ArenaCore.valueBytes(p))
    }

    public func put(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws {
        if let failure = core.pointee.put(key: key, value: value) { throw failure.error }
    }

    @discardableResult
    public func remove(key: UnsafeRawBufferPointer) throws -> Bool {
        core.pointee.remove(key: key)
    }

    /// Up to `limit` keys. Successive calls continue where the previous one stopped (wrapping
    /// around), so the cache-cleaning loop — take a batch, remove it, repeat — scans the index
    /// once instead of rescanning its drained start every time. Empty only when the engine is.
    public func keys(limit: Int) throws -> [[UInt8]] {
        core.pointee.keys(limit: limit)
    }

    /// Visits every record in index order. `body` must not modify this engine; if it does, the
    /// walk stays memory-safe but may skip or repeat records.
    public func forEach(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool) throws {
        var i = 0
        while i <= core.pointee.mask {
            let e = core.pointee.table[i]
            if e != 0 {
                let p = core.pointee.slot(UInt32(truncatingIfNeeded: e))
                if try !body(ArenaCore.keyBytes(p), ArenaCore.valueBytes(p)) { return }
            }
            i += 1
        }
    }

    public func sync() throws {}
    public func flushToFile() throws {}

    /// Frees every page, record and the index; the engine is then empty (and still usable).
    public func close() throws { core.pointee.reset() }

    public var recordCount: UInt64 { UInt64(core.pointee.count) }
    public var fileSize: UInt64 { 0 }

    /// Bytes currently obtained from the system allocator: arena pages, large-record blocks,
    /// the index and the page table (not the fixed class table).
    public var allocatedBytes: Int { core.pointee.allocatedBytes }

    /// Number of arena pages and dedicated large-record blocks currently held.
    public var pageCount: Int { core.pointee.livePages }

    /// The slot sizes of the size classes (the last one is the largest record kept in pages).
    public var slotSizes: [Int] { (0..<core.pointee.classCount).map { Int(core.pointee.classes[$0].size) } }

    /// Current index capacity (entries).
    public var indexCapacity: Int { core.pointee.mask + 1 }
}

/// Why a put failed. The core reports failures as values instead of throwing: Swift 6.3.1
/// (x86-64, -O) miscompiles a throwing `put` whose in-place path ends in `copyMemory` — the
/// `memmove` becomes a tail call that leaves garbage in the error register, so a successful
/// replace "throws" a wild pointer. Non-throwing code has no error register to get wrong.
enum ArenaFailure {
    case recordTooLarge, outOfMemory, pageLimit

    var error: StorageError {
        switch self {
        case .recordTooLarge: return StorageError("memory engine: record too large")
        case .outOfMemory: return StorageError("memory engine: out of memory")
        case .pageLimit: return StorageError("memory engine: arena page limit reached (\(ArenaCore.maxPageID) pages)")
        }
    }
}

/// Per size class: slot size, free-list head and the page being carved.
struct SlabClass {
    var size: Int32
    /// Head of the free list (a handle), 0 when empty.
    var freeHead: UInt32 = 0
    /// Page being carved into fresh slots (0 = none yet).
    var carvePage: UInt32 = 0
    /// Byte offset of the next fresh slot in `carvePage`.
    var carveOffset: Int32 = 0
}

/// The engine's state and algorithms (see `ArenaMemoryEngine`).
struct ArenaCore {
    static let minCapacity = 16
    static let maxPageID = 0xFFFF
    static let headerSize = 8

    let hasher: KeyHash
    let pageSize: Int
    /// Largest slot size; bigger records get a dedicated block.
    let maxClassSize: Int
    let classCount: Int
    let classes: UnsafeMutablePointer<SlabClass>
    /// Size class of a record of `n` bytes at `(n + 15) >> 4`, for n ≤ maxClassSize.
    let classOfUnits: UnsafeMutablePointer<UInt8>

    // Index.
    var table: UnsafeMutablePointer<UInt64>
    var mask: Int
    var count = 0
    /// Where the next `keys(limit:)` starts.
    var cursor = 0

    // Pages: base address by page ID (slot 0 unused).
    var pages: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    var pagesCapacity: Int
    /// IDs below this have been handed out at some point.
    var nextPageID = 1
    var freePageIDs: [UInt32] = []
    var livePages = 0

    var allocatedBytes = 0
    /// Why the last `allocate` returned 0.
    var failure = ArenaFailure.outOfMemory

    init(pageSize: Int, seed: UInt64) {
        hasher = KeyHash(seed: seed)
        self.pageSize = pageSize
        maxClassSize = pageSize / 8
        var sizes: [Int] = []
        var s = 32
        while s < maxClassSize {
            sizes.append(s)
            s = max((s * 5 / 4 + 15) & ~15, s + 16)
        }
        sizes.append(maxClassSize)
        precondition(sizes.count < 255)
        classCount = sizes.count
        classes = .allocate(capacity: sizes.count)
        for (i, size) in sizes.enumerated() { (classes + i).initialize(to: SlabClass(size: Int32(size))) }
        let units = maxClassSize >> 4 + 1
        classOfUnits = .allocate(capacity: units)
        var c = 0
        for u in 0..<units {
            while sizes[c] < u << 4 { c += 1 }
            classOfUnits[u] = UInt8(c)
        }
        table = ArenaCore.zeroedTable(ArenaCore.minCapacity)
        mask = ArenaCore.minCapacity - 1
        pagesCapacity = 64
        pages = .allocate(capacity: pagesCapacity)
        pages.initialize(repeating: nil, count: pagesCapacity)
        allocatedBytes = ArenaCore.minCapacity * 8 + pagesCapacity * 8
    }

    /// A small empty index (tables are `calloc` memory, released with `free`).
    private static func zeroedTable(_ capacity: Int) -> UnsafeMutablePointer<UInt64> {
        guard let raw = calloc(capacity, 8) else { fatalError("memory engine: out of memory") }
        return raw.bindMemory(to: UInt64.self, capacity: capacity)
    }

    // MARK: - Records

    @inline(__always)
    func slot(_ handle: UInt32) -> UnsafeMutableRawPointer {
        pages[Int(handle &>> 16)].unsafelyUnwrapped + Int(handle & 0xFFFF) &<< 4
    }

    @inline(__always)
    static func keyBytes(_ p: UnsafeMutableRawPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: p + headerSize, count: Int(p.load(as: UInt32.self)))
    }

    @inline(__always)
    static func valueBytes(_ p: UnsafeMutableRawPointer) -> UnsafeRawBufferPointer {
        let kl = Int(p.load(as: UInt32.self))
        return UnsafeRawBufferPointer(start: p + headerSize + kl, count: Int(p.load(fromByteOffset: 4, as: UInt32.self)))
    }

    @inline(__always)
    static func recordSize(_ p: UnsafeMutableRawPointer) -> Int {
        headerSize + Int(p.load(as: UInt32.self)) + Int(p.load(fromByteOffset: 4, as: UInt32.self))
    }

    /// Size class of a record of `size` bytes; `classCount` means a dedicated large block.
    @inline(__always)
    func sizeClass(_ size: Int) -> Int {
        size <= maxClassSize ? Int(classOfUnits[(size + 15) &>> 4]) : classCount
    }

    @inline(__always)
    static func keyEquals(_ p: UnsafeMutableRawPointer, _ key: UnsafeRawBufferPointer) -> Bool {
        let n = key.count
        guard Int(p.load(as: UInt32.self)) == n else { return false }
        return n == 0 || memcmp(p + headerSize, key.baseAddress.unsafelyUnwrapped, n) == 0
    }

    // MARK: - Index

    /// The position of `key`'s entry, or of the empty entry that ends its probe run.
    @inline(__always)
    func probe(_ key: UnsafeRawBufferPointer, _ tag: UInt32) -> Int {
        var i = Int(tag) & mask
        while true {
            let e = table[i]
            if e == 0 { return i }
            if UInt32(truncatingIfNeeded: e &>> 32) == tag && ArenaCore.keyEquals(slot(UInt32(truncatingIfNeeded: e)), key) {
                return i
            }
            i = (i &+ 1) & mask
        }
    }

    @inline(__always)
    func lookup(_ key: UnsafeRawBufferPointer) -> UnsafeMutableRawPointer? {
        let tag = UInt32(truncatingIfNeeded: hasher.hash(key))
        let e = table[probe(key, tag)]
        return e == 0 ? nil : slot(UInt32(truncatingIfNeeded: e))
    }

    /// Rebuilds the index with `capacity` entries; false when that memory is unavailable.
    @discardableResult
    mutating func rehash(to capacity: Int) -> Bool {
        guard let raw = calloc(capacity, 8) else { return false }
        let t = raw.bindMemory(to: UInt64.self, capacity: capacity)
        let m = capacity - 1
        for i in 0...mask {
            let e = table[i]
            if e == 0 { continue }
            var j = Int(truncatingIfNeeded: e &>> 32) & m
            while t[j] != 0 { j = (j &+ 1) & m }
            t[j] = e
        }
        allocatedBytes += (capacity - (mask + 1)) * 8
        freeTable()
        table = t
        mask = m
        cursor = 0
        return true
    }

    private func freeTable() {
        free(UnsafeMutableRawPointer(table))
    }

    /// Empties position `i` and shifts the rest of its run back (no tombstones).
    @inline(__always)
    mutating func deleteEntry(at i: Int) {
        var hole = i
        var j = i
        while true {
            j = (j &+ 1) & mask
            let e = table[j]
            if e == 0 { break }
            let home = Int(truncatingIfNeeded: e &>> 32) & mask
            // The entry may move into the hole when the hole lies within [home, j).
            if (j &- home) & mask >= (j &- hole) & mask {
                table[hole] = e
                hole = j
            }
        }
        table[hole] = 0
    }

    // MARK: - Slots

    /// A free page ID, or 0 when all are in use.
    private mutating func takePageID() -> Int {
        if let id = freePageIDs.popLast() { return Int(id) }
        guard nextPageID <= ArenaCore.maxPageID else { return 0 }
        if nextPageID == pagesCapacity {
            let n = pagesCapacity * 2
            let p = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: n)
            p.moveInitialize(from: pages, count: pagesCapacity)
            (p + pagesCapacity).initialize(repeating: nil, count: n - pagesCapacity)
            pages.deallocate()
            pages = p
            allocatedBytes += (n - pagesCapacity) * 8
            pagesCapacity = n
        }
        nextPageID += 1
        return nextPageID - 1
    }

    /// The handle of a new block of `size` bytes with a page ID of its own; 0 on failure.
    private mutating func newBlock(_ size: Int) -> UInt32 {
        guard let mem = malloc(size) else { failure = .outOfMemory; return 0 }
        let id = takePageID()
        guard id != 0 else { free(mem); failure = .pageLimit; return 0 }
        pages[id] = mem
        allocatedBytes += size
        livePages += 1
        return UInt32(id) << 16
    }

    /// A free slot of class `c` (or a dedicated block of `size` bytes when `c == classCount`);
    /// 0 on failure (see `failure`).
    @inline(__always)
    private mutating func allocate(class c: Int, size: Int) -> UInt32 {
        if c == classCount { return newBlock(size) }
        let head = classes[c].freeHead
        if head != 0 {
            classes[c].freeHead = slot(head).load(as: UInt32.self)
            return head
        }
        let slotSize = Int(classes[c].size)
        if classes[c].carvePage == 0 || Int(classes[c].carveOffset) + slotSize > pageSize {
            let page = newBlock(pageSize)
            if page == 0 { return 0 }
            classes[c].carvePage = page >> 16
            classes[c].carveOffset = 0
        }
        let h = classes[c].carvePage << 16 | UInt32(classes[c].carveOffset) >> 4
        classes[c].carveOffset += Int32(slotSize)
        return h
    }

    /// Returns a slot to its class's free list, or frees a dedicated block.
    @inline(__always)
    private mutating func release(_ handle: UInt32, class c: Int, size: Int) {
        if c == classCount {
            let id = Int(handle >> 16)
            free(pages[id])
            pages[id] = nil
            allocatedBytes -= size
            livePages -= 1
            freePageIDs.append(UInt32(id))
        } else {
            slot(handle).storeBytes(of: classes[c].freeHead, as: UInt32.self)
            classes[c].freeHead = handle
        }
    }

    @inline(__always)
    private func write(_ handle: UInt32, _ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) {
        let p = slot(handle)
        p.storeBytes(of: UInt32(truncatingIfNeeded: key.count), as: UInt32.self)
        p.storeBytes(of: UInt32(truncatingIfNeeded: value.count), toByteOffset: 4, as: UInt32.self)
        if key.count > 0 { (p + ArenaCore.headerSize).copyMemory(from: key.baseAddress.unsafelyUnwrapped, byteCount: key.count) }
        if value.count > 0 {
            (p + ArenaCore.headerSize + key.count).copyMemory(from: value.baseAddress.unsafelyUnwrapped, byteCount: value.count)
        }
    }

    // MARK: - Operations

    /// Stores the record; nil on success. Never inlined: inlined into the throwing
    /// `ArenaMemoryEngine.put`, its final `memmove` could become that miscompiled tail call again.
    @inline(never)
    mutating func put(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> ArenaFailure? {
        guard key.count <= Int(UInt32.max), value.count <= Int(UInt32.max) - key.count - ArenaCore.headerSize else {
            return .recordTooLarge
        }
        let tag = UInt32(truncatingIfNeeded: hasher.hash(key))
        let size = ArenaCore.headerSize + key.count + value.count
        let c = sizeClass(size)
        var i = probe(key, tag)
        let e = table[i]
        if e != 0 {
            let old = UInt32(truncatingIfNeeded: e)
            let p = slot(old)
            let oldSize = ArenaCore.recordSize(p)
            let oldClass = sizeClass(oldSize)
            if oldClass == c && (c != classCount || oldSize == size) {
                // Same slot class: overwrite the value in place (copyMemory is a memmove, so a
                // value read from this very slot is fine).
                p.storeBytes(of: UInt32(truncatingIfNeeded: value.count), toByteOffset: 4, as: UInt32.self)
                if value.count > 0 {
                    (p + ArenaCore.headerSize + key.count).copyMemory(from: value.baseAddress.unsafelyUnwrapped, byteCount: value.count)
                }
                return nil
            }
            // Write the new slot before freeing the old one (key or value may point into it).
            let h = allocate(class: c, size: size)
            if h == 0 { return failure }
            write(h, key, value)
            table[i] = UInt64(tag) << 32 | UInt64(h)
            release(old, class: oldClass, size: oldSize)
            return nil
        }
        if count + 1 > (mask + 1) / 4 * 3 {
            guard rehash(to: (mask + 1) * 2) else { return .outOfMemory }
            i = probe(key, tag)
        }
        let h = allocate(class: c, size: size)
        if h == 0 { return failure }
        write(h, key, value)
        table[i] = UInt64(tag) << 32 | UInt64(h)
        count += 1
        return nil
    }

    mutating func remove(key: UnsafeRawBufferPointer) -> Bool {
        let tag = UInt32(truncatingIfNeeded: hasher.hash(key))
        let i = probe(key, tag)
        let e = table[i]
        if e == 0 { return false }
        let h = UInt32(truncatingIfNeeded: e)
        let size = ArenaCore.recordSize(slot(h))
        release(h, class: sizeClass(size), size: size)
        deleteEntry(at: i)
        count -= 1
        let capacity = mask + 1
        if capacity > ArenaCore.minCapacity && count < capacity / 8 {
            rehash(to: max(ArenaCore.minCapacity, capacity / 4))  // failure just keeps the big table
        }
        return true
    }

    mutating func keys(limit: Int) -> [[UInt8]] {
        guard limit > 0, count > 0 else { return [] }
        var out: [[UInt8]] = []
        out.reserveCapacity(min(limit, count))
        var i = cursor & mask
        var left = mask + 1
        while left > 0 && out.count < limit {
            let e = table[i]
            if e != 0 { out.append([UInt8](ArenaCore.keyBytes(slot(UInt32(truncatingIfNeeded: e))))) }
            i = (i &+ 1) & mask
            left -= 1
        }
        cursor = i
        return out
    }

    /// Frees all memory (the core is unusable afterwards).
    mutating func releaseAll() {
        if nextPageID > 1 {
            for id in 1..<nextPageID { free(pages[id]) }
        }
        pages.deallocate()
        freeTable()
        classOfUnits.deallocate()
        classes.deinitialize(count: classCount)
        classes.deallocate()
    }

    /// Frees every record and page and starts over empty.
    mutating func reset() {
        if nextPageID > 1 {
            for id in 1..<nextPageID { free(pages[id]) }
        }
        pages.deallocate()
        pagesCapacity = 64
        pages = .allocate(capacity: pagesCapacity)
        pages.initialize(repeating: nil, count: pagesCapacity)
        nextPageID = 1
        freePageIDs = []
        livePages = 0
        for c in 0..<classCount { classes[c] = SlabClass(size: classes[c].size) }
        freeTable()
        table = ArenaCore.zeroedTable(ArenaCore.minCapacity)
        mask = ArenaCore.minCapacity - 1
        count = 0
        cursor = 0
        allocatedBytes = ArenaCore.minCapacity * 8 + pagesCapacity * 8
    }
}
