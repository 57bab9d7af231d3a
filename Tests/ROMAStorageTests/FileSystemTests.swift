import Foundation
import Testing
@testable import ROMAStorage

@Suite("FileSystem helpers")
struct FileSystemTests {
    @Test("normalize", arguments: [
        ("/a/b/c", "/a/b/c"), ("/a//b/./c/", "/a/b/c"), ("/a/b/../c", "/a/c"), ("/../a", "/a"),
        ("/", "/"), ("a/b", "/a/b"), ("/a/./../..", "/"),
    ])
    func normalize(input: String, expected: String) {
        #expect(FileSystem.normalize(input) == expected)
    }

    @Test("absolute resolves relative paths against the working directory")
    func absolute() {
        let cwd = FileManager.default.currentDirectoryPath
        #expect(FileSystem.absolute("/x/y") == "/x/y")
        #expect(FileSystem.absolute("x/./y") == FileSystem.normalize(cwd + "/x/y"))
    }

    @Test("makeDirectories, exists, isDirectory, list, size, readText")
    func files() throws {
        let dir = TempDir("fs")
        defer { dir.remove() }
        let deep = dir.file("a/b/c")
        try FileSystem.makeDirectories(deep)
        try FileSystem.makeDirectories(deep)   // mkdir -p: existing is fine
        #expect(FileSystem.isDirectory(deep))
        #expect(FileSystem.exists(deep))
        dir.write("a/f2", "hello")
        dir.write("a/f1", "")
        #expect(FileSystem.list(dir.file("a")) == ["b", "f1", "f2"])
        #expect(FileSystem.list(dir.file("missing")) == [])
        #expect(FileSystem.size(dir.file("a/f2")) == 5)
        #expect(FileSystem.size(dir.file("missing")) == nil)
        #expect(FileSystem.readText(dir.file("a/f2")) == "hello")
        #expect(FileSystem.readText(dir.file("missing")) == nil)
        #expect(!FileSystem.isDirectory(dir.file("a/f2")))
        dir.write("file", "x")
        #expect(throws: StorageError.self) { try FileSystem.makeDirectories(dir.file("file/sub")) }
    }

    @Test("snapshot copies next to division files do not count as divisions")
    func snapshotFilesIgnored() throws {
        let dir = TempDir("snapfiles")
        defer { dir.remove() }
        let s = try openStorage(.tc, dir: dir, divnum: 2)
        try s.close()
        dir.write("1.tc.20240101120000", "copy")
        dir.write("9.cache.tc.20240101120000", "copy")
        let again = try openStorage(.tc, dir: dir, divnum: 2)
        #expect(again.states == [.normal, .normal])
        try again.close()
    }
}
