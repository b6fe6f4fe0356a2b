import Foundation
import Testing

/// Comments must stand alone: a reader has only the repository, so no comment in `Sources/` may cite
/// numbered items or sections of a document kept elsewhere ("gap" plus a number, or a section sign).
struct SourceHygieneTests {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func commentsCiteNoOutsideDocument() throws {
        let sources = Self.packageRoot.appendingPathComponent("Sources")
        let files = try Self.swiftFiles(under: sources)
        #expect(!files.isEmpty, "no Swift files found under \(sources.path)")
        for file in files {
            let relative = String(file.path.dropFirst(Self.packageRoot.path.count + 1))
            let text = try String(contentsOf: file, encoding: .utf8)
            guard let comments = SwiftComments.byLine(in: text) else {
                Issue.record("\(relative): could not tell comments from code (unbalanced string or comment)")
                continue
            }
            for (line, comment) in comments.sorted(by: { $0.key < $1.key }) where Self.citesOutsideDocument(comment) {
                let shown = comment.drop { $0 == "/" }.trimmingCharacters(in: .whitespaces)
                Issue.record("\(relative):\(line): comment cites an outside document; state the rule itself: \(shown)")
            }
        }
    }

    /// The lexer finds comments wherever they are, and nothing that only looks like one inside a string.
    @Test func commentsAreFoundAndStringsSkipped() throws {
        let source = """
            let a = "// not a comment \\(f("x // nor this")) done" // trailing one
            let b = #"raw \\( "// still a string" "# /* block /* nested */ still block */ let c = 1
            let d = \"""
                // inside a multi-line string
                \""" // after it
            """
        let comments = try #require(SwiftComments.byLine(in: source))
        #expect(comments == [1: " trailing one", 2: " block /* nested */ still block ", 5: " after it"])
        #expect(Self.citesOutsideDocument("see Gap 4"))
        #expect(Self.citesOutsideDocument("gaps 14-15 fixed"))
        #expect(Self.citesOutsideDocument("as in \u{A7}5.2"))
        #expect(!Self.citesOutsideDocument("the gap between 4 and 5"))
    }

    static func citesOutsideDocument(_ comment: String) -> Bool {
        comment.contains("\u{A7}")
            || comment.range(of: #"\bgaps? [0-9]"#, options: [.regularExpression, .caseInsensitive]) != nil
    }

    static func swiftFiles(under directory: URL) throws -> [URL] {
        guard let enumerator = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: nil) else {
            throw CocoaError(.fileReadNoSuchFile)
        }
        var files: [URL] = []
        while let url = enumerator.nextObject() as? URL {
            if url.pathExtension == "swift" { files.append(url) }
        }
        return files.sorted { $0.path < $1.path }
    }
}

/// Finds the comments in Swift source: line and (nested) block comments, skipping string literals
/// (plain, raw `#"…"#` and multi-line, with interpolations that hold strings of their own).
enum SwiftComments {
    private enum Context {
        /// Code; `parens` counts open parentheses inside a string interpolation.
        case code(parens: Int)
        case string(hashes: Int, multiline: Bool)
        case block(depth: Int)
    }

    /// Comment text by 1-based line number, or nil when the source ends inside a string or block comment.
    static func byLine(in text: String) -> [Int: String]? {
        let s = Array(text.unicodeScalars)
        var comments: [Int: String] = [:]
        var line = 1
        var stack: [Context] = [.code(parens: 0)]
        var i = 0

        func at(_ k: Int, _ scalar: Unicode.Scalar) -> Bool { k < s.count && s[k] == scalar }
        func hashes(from k: Int) -> Int {
            var j = k
            while at(j, "#") { j += 1 }
            return j - k
        }
        func note(_ scalar: Unicode.Scalar) {
            comments[line, default: ""].unicodeScalars.append(scalar)
        }

        while i < s.count {
            let c = s[i]
            if c == "\n" {
                line += 1
                i += 1
                continue
            }
            guard let top = stack.last else { return nil }
            switch top {
            case .code(let parens):
                if c == "/", at(i + 1, "/") {
                    i += 2
                    while i < s.count, s[i] != "\n" { note(s[i]); i += 1 }
                } else if c == "/", at(i + 1, "*") {
                    stack.append(.block(depth: 1))
                    i += 2
                } else if c == "#" || c == "\"" {
                    let count = hashes(from: i)
                    let quote = i + count
                    if at(quote, "\"") {
                        let multiline = at(quote + 1, "\"") && at(quote + 2, "\"")
                        stack.append(.string(hashes: count, multiline: multiline))
                        i = quote + (multiline ? 3 : 1)
                    } else {
                        i += max(count, 1)
                    }
                } else if c == "(", stack.count > 1 {
                    stack[stack.count - 1] = .code(parens: parens + 1)
                    i += 1
                } else if c == ")", stack.count > 1 {
                    if parens == 0 { stack.removeLast() } else { stack[stack.count - 1] = .code(parens: parens - 1) }
                    i += 1
                } else {
                    i += 1
                }
            case .block(let depth):
                if c == "/", at(i + 1, "*") {
                    stack[stack.count - 1] = .block(depth: depth + 1)
                    note("/"); note("*")
                    i += 2
                } else if c == "*", at(i + 1, "/") {
                    if depth == 1 { stack.removeLast() } else {
                        stack[stack.count - 1] = .block(depth: depth - 1)
                        note("*"); note("/")
                    }
                    i += 2
                } else {
                    note(c)
                    i += 1
                }
            case .string(let count, let multiline):
                if c == "\\", hashes(from: i + 1) >= count {
                    let next = i + 1 + count
                    if at(next, "(") {
                        stack.append(.code(parens: 0))
                        i = next + 1
                    } else {
                        i = at(next, "\n") ? next : next + 1  // skip the escaped character, never a line end
                    }
                } else if c == "\"", !multiline || (at(i + 1, "\"") && at(i + 2, "\"")) {
                    let end = i + (multiline ? 3 : 1)
                    if hashes(from: end) >= count {
                        stack.removeLast()
                        i = end + count
                    } else {
                        i += 1
                    }
                } else {
                    i += 1
                }
            }
        }
        return stack.count == 1 ? comments : nil
    }
}
