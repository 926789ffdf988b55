// doc-regions: the code quoted in the Markdown docs is the code in the source files.
//
// Marking a region in a source file (each marker is a line of its own, leading spaces allowed):
//
//     // #region accept-loop                 C++ and any other file
//     ...
//     // #endregion accept-loop
//     # #region flags                        shell and CMake (*.sh, *.bash, *.cmake,
//     ...                                    CMakeLists.txt; also *.py, *.yml, *.yaml, *.toml)
//     # #endregion flags
//
// NAME is [a-z0-9-]+, once per file. Regions may nest or overlap. A region's text is the lines
// strictly between its two markers, without the marker lines of other regions, and with the
// indentation common to its non-blank lines removed, so a loop inside a function reads
// flush-left in the docs. Whitespace-only lines become empty.
//
// Quoting a region in Markdown: the comment line, then on the very next line a fenced code block
// (``` or ~~~, optional language) whose body is exactly the region's text:
//
//     <!-- quote: 01-blocking/main.cpp#accept-loop -->
//     ```cpp
//     while (!stop_requested()) {
//     ...
//     ```
//
// PATH is relative to the repository root (the ROOT argument). The comment and its block may be
// indented together, inside a list item. Comments inside other fenced blocks are not quotes, so a
// README can show this syntax.
//
//   doc-regions check ROOT    compare every quote in ROOT/**/*.md with its region; exit 1 on any
//                             problem, each reported as FILE:LINE: message (FILE is the source
//                             file for a broken marker, the Markdown file for the rest)
//   doc-regions update ROOT   rewrite the quoted blocks from the sources; a Markdown file with a
//                             quote that cannot be resolved is left untouched, and exit 1
// Exit status 2: bad arguments, or a file that cannot be read or written.
//
// Directories not searched for *.md: build*, hidden ones (.git, ...), node_modules, and any whose
// name ends in "testdata". The last rule keeps tools/doc-regions-testdata/, this tool's fixtures
// (some broken on purpose), out of the repository's check; its own tests check each fixture
// directory as a ROOT (tools/CMakeLists.txt).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

namespace fs = std::filesystem;
using Lines = std::vector<std::string>;

namespace {

constexpr std::string_view kWhitespace = " \t\r";

std::string_view trim(std::string_view s) {
    size_t b = s.find_first_not_of(kWhitespace);
    if (b == std::string_view::npos) return {};
    return s.substr(b, s.find_last_not_of(kWhitespace) - b + 1);
}

std::string leading_ws(std::string_view s) {
    return std::string(s.substr(0, std::min(s.find_first_not_of(" \t"), s.size())));
}

struct Text {
    Lines lines;
    bool final_newline = true;
};

std::optional<Text> read_text(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return std::nullopt;
    std::stringstream buf;
    buf << in.rdbuf();
    std::string s = buf.str();
    Text t;
    t.final_newline = s.empty() || s.back() == '\n';
    for (size_t start = 0; start < s.size();) {
        size_t nl = std::min(s.find('\n', start), s.size());
        t.lines.push_back(s.substr(start, nl - start));
        start = nl + 1;
    }
    return t;
}

// ---- source files ----------------------------------------------------------------------------

struct Marker {
    bool open;
    std::string name;
};

// `// #region NAME`, `// #endregion NAME` (comment is "//" or "#"); a marker with a bad name keeps
// it, so that it can be reported rather than silently taken for prose.
std::optional<Marker> parse_marker(std::string_view line, std::string_view comment) {
    std::string_view t = trim(line);
    if (!t.starts_with(comment)) return std::nullopt;
    t = trim(t.substr(comment.size()));
    Marker m{t.starts_with("#region"), {}};
    std::string_view keyword = m.open ? "#region" : "#endregion";
    if (!t.starts_with(keyword)) return std::nullopt;
    t.remove_prefix(keyword.size());
    if (!t.empty() && t[0] != ' ' && t[0] != '\t') return std::nullopt;  // "#regional": prose
    m.name = trim(t);
    return m;
}

bool valid_name(std::string_view n) {
    return !n.empty() && std::all_of(n.begin(), n.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    });
}

bool hash_comments(const fs::path& p) {
    static const std::set<std::string> exts{".sh", ".bash", ".cmake", ".py", ".yml", ".yaml", ".toml"};
    return p.filename() == "CMakeLists.txt" || exts.contains(p.extension().string());
}

struct Region {
    int begin = 0, end = 0;  // 1-based lines of the two markers; end == 0 until closed
};

struct Source {
    bool exists = false;
    Lines lines;
    std::vector<bool> is_marker;
    std::map<std::string, Region> regions;
    std::set<std::string> broken;   // regions with unbalanced or duplicate markers
    std::vector<std::pair<int, std::string>> problems;  // line, "path:line: message"
};

Source load_source(const fs::path& root, const std::string& rel) {
    Source src;
    auto text = read_text(root / rel);
    if (!text) return src;
    src.exists = true;
    src.lines = std::move(text->lines);
    src.is_marker.assign(src.lines.size(), false);
    auto problem = [&](int line, const std::string& msg) {
        src.problems.emplace_back(line, fmt::format("{}:{}: {}", rel, line, msg));
    };
    std::string_view comment = hash_comments(rel) ? "#" : "//";
    for (size_t i = 0; i < src.lines.size(); ++i) {
        auto m = parse_marker(src.lines[i], comment);
        if (!m) continue;
        src.is_marker[i] = true;
        int line = static_cast<int>(i) + 1;
        const char* kw = m->open ? "#region" : "#endregion";
        if (!valid_name(m->name)) {
            problem(line, fmt::format("bad name '{}' after {} (use [a-z0-9-]+)", m->name, kw));
            continue;
        }
        auto it = src.regions.find(m->name);
        if (m->open && it == src.regions.end()) {
            src.regions[m->name] = Region{line, 0};
        } else if (m->open) {
            problem(line, fmt::format("duplicate #region {} (first at line {})", m->name, it->second.begin));
            src.broken.insert(m->name);
        } else if (it == src.regions.end() || it->second.end != 0) {
            problem(line, fmt::format("#endregion {} without a matching #region {}", m->name, m->name));
            if (it != src.regions.end()) src.broken.insert(m->name);
        } else {
            it->second.end = line;
        }
    }
    for (const auto& [name, r] : src.regions) {
        if (r.end != 0) continue;
        problem(r.begin, fmt::format("#region {} has no #endregion {}", name, name));
        src.broken.insert(name);
    }
    std::stable_sort(src.problems.begin(), src.problems.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    return src;
}

Lines extract(const Source& src, const Region& r) {
    Lines out;
    for (int i = r.begin; i < r.end - 1; ++i)  // 0-based: the lines after the opening marker
        if (!src.is_marker[i]) out.push_back(src.lines[i]);
    std::optional<std::string> common;
    for (const auto& l : out) {
        if (trim(l).empty()) continue;
        std::string ind = leading_ws(l);
        if (!common) common = ind;
        common->erase(std::mismatch(common->begin(), common->end(), ind.begin(), ind.end()).first,
                      common->end());
    }
    for (auto& l : out) l = trim(l).empty() ? "" : l.substr(common->size());
    return out;
}

// ---- Markdown files --------------------------------------------------------------------------

// "```" or "~~~" (3 or more) when the line opens a fenced block, else empty.
std::string fence_of(std::string_view line) {
    std::string_view t = trim(line);
    if (t.empty() || (t[0] != '`' && t[0] != '~')) return {};
    size_t n = std::min(t.find_first_not_of(t[0]), t.size());
    return n >= 3 ? std::string(t.substr(0, n)) : std::string();
}

bool closes(std::string_view line, const std::string& fence) {
    std::string_view t = trim(line);
    return t.size() >= fence.size() && t.find_first_not_of(fence[0]) == std::string_view::npos;
}

struct Quote {
    int line = 0;                  // 1-based line of the comment
    std::string path, name;
    std::string error;             // no usable fenced block after the comment
    std::string indent;            // of the fence line, stripped from the body
    size_t body_begin = 0, body_end = 0;  // 0-based, [begin, end)
};

std::vector<Quote> find_quotes(const Lines& md) {
    std::vector<Quote> quotes;
    constexpr std::string_view open = "<!-- quote:", close = "-->";
    for (size_t i = 0; i < md.size(); ++i) {
        if (std::string f = fence_of(md[i]); !f.empty()) {  // some other block: skip it whole
            while (++i < md.size() && !closes(md[i], f)) {}
            continue;
        }
        std::string_view t = trim(md[i]);
        if (!t.starts_with(open) || !t.ends_with(close)) continue;
        Quote& q = quotes.emplace_back();
        q.line = static_cast<int>(i) + 1;
        std::string_view target = trim(t.substr(open.size(), t.size() - open.size() - close.size()));
        size_t hash = target.rfind('#');
        if (hash == std::string_view::npos) {
            q.error = fmt::format("quote target '{}' is not PATH#NAME", target);
            continue;
        }
        q.path = target.substr(0, hash);
        q.name = target.substr(hash + 1);
        std::string f = i + 1 < md.size() ? fence_of(md[i + 1]) : "";
        if (f.empty()) {
            q.error = "no fenced code block on the line after the quote comment";
            continue;
        }
        size_t j = i + 2;
        while (j < md.size() && !closes(md[j], f)) ++j;
        if (j == md.size()) {
            q.error = "the fenced code block after the quote comment is never closed";
            continue;
        }
        q.indent = leading_ws(md[i + 1]);
        q.body_begin = i + 2;
        q.body_end = j;
        i = j;
    }
    return quotes;
}

Lines block_body(const Lines& md, const Quote& q) {
    Lines body;
    for (size_t i = q.body_begin; i < q.body_end; ++i) {
        std::string_view l = md[i];
        if (l.starts_with(q.indent)) l.remove_prefix(q.indent.size());
        body.emplace_back(trim(l).empty() ? std::string_view{} : l);
    }
    return body;
}

// ---- check and update ------------------------------------------------------------------------

void report_stale(const std::string& where, const Quote& q, const std::string& md_rel, const Lines& want,
                  const Lines& have) {
    auto d = static_cast<size_t>(std::mismatch(want.begin(), want.end(), have.begin(), have.end()).first -
                                 want.begin());
    auto show = [d](const Lines& l) { return d < l.size() ? "|" + l[d] : std::string("(end of block)"); };
    fmt::print("{}quote {}#{} is out of date: first difference at {}:{}\n", where, q.path, q.name, md_rel,
               q.body_begin + d + 1);
    fmt::print("    source: {}\n    docs:   {}\n", show(want), show(have));
}

bool write_text(const fs::path& p, const Lines& lines, bool final_newline) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    for (size_t i = 0; i < lines.size(); ++i)
        f << lines[i] << (i + 1 < lines.size() || final_newline ? "\n" : "");
    return static_cast<bool>(f.flush());
}

struct Run {
    fs::path root;
    bool update = false;
    std::map<std::string, Source> sources;
    int quotes = 0, stale = 0, unresolved = 0, source_problems = 0, updated = 0;

    // Each quoted source is read once, and its marker problems are reported once.
    const Source& source(const std::string& rel) {
        auto it = sources.find(rel);
        if (it != sources.end()) return it->second;
        it = sources.emplace(rel, load_source(root, rel)).first;
        for (const auto& [line, p] : it->second.problems) fmt::print("{}\n", p);
        source_problems += static_cast<int>(it->second.problems.size());
        return it->second;
    }

    // The text of the region a quote names, or nothing after reporting why there is none.
    std::optional<Lines> resolve(const Quote& q, const std::string& where) {
        std::string why = q.error;
        if (why.empty()) {
            const Source& src = source(q.path);
            auto r = src.regions.find(q.name);
            if (!src.exists) why = fmt::format("cannot read source file {}", q.path);
            else if (r == src.regions.end()) why = fmt::format("no region '{}' in {}", q.name, q.path);
            else if (src.broken.contains(q.name))
                why = fmt::format("region '{}' in {} has unbalanced markers (reported above)", q.name, q.path);
            else return extract(src, r->second);
        }
        fmt::print("{}{}\n", where, why);
        ++unresolved;
        return std::nullopt;
    }

    void process(const fs::path& md_path) {
        std::string md_rel = md_path.lexically_relative(root).generic_string();
        auto text = read_text(md_path);
        if (!text) throw std::runtime_error("cannot read " + md_rel);
        const Lines& md = text->lines;
        Lines out;          // the rewritten file, for update: md lines [0, copied) and new bodies
        size_t copied = 0;
        std::vector<std::string> changes;
        int unresolved_before = unresolved;
        for (const Quote& q : find_quotes(md)) {
            ++quotes;
            std::string where = fmt::format("{}:{}: ", md_rel, q.line);
            std::optional<Lines> want = resolve(q, where);
            if (!want) continue;
            Lines have = block_body(md, q);
            if (*want == have) continue;
            if (!update) {
                ++stale;
                report_stale(where, q, md_rel, *want, have);
                continue;
            }
            out.insert(out.end(), md.begin() + static_cast<long>(copied),
                       md.begin() + static_cast<long>(q.body_begin));
            for (const auto& l : *want) out.push_back(l.empty() ? l : q.indent + l);
            copied = q.body_end;
            changes.push_back(fmt::format("{}updated {}#{} ({} lines, was {})", where, q.path, q.name,
                                          want->size(), have.size()));
        }
        if (changes.empty()) return;
        if (unresolved > unresolved_before) {
            fmt::print("{}: not rewritten: {} quote(s) above cannot be resolved\n", md_rel,
                       unresolved - unresolved_before);
            return;
        }
        out.insert(out.end(), md.begin() + static_cast<long>(copied), md.end());
        if (!write_text(md_path, out, text->final_newline)) throw std::runtime_error("cannot write " + md_rel);
        for (const auto& c : changes) fmt::print("{}\n", c);
        updated += static_cast<int>(changes.size());
    }
};

bool skipped_dir(const fs::path& dir) {
    std::string n = dir.filename().string();
    return n.starts_with("build") || n.starts_with('.') || n == "node_modules" || n.ends_with("testdata");
}

std::vector<fs::path> markdown_files(const fs::path& root) {
    std::vector<fs::path> files;
    fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied), end;
    for (; it != end; ++it) {
        if (it->is_directory() && skipped_dir(it->path())) it.disable_recursion_pending();
        else if (it->is_regular_file() && it->path().extension() == ".md") files.push_back(it->path());
    }
    std::sort(files.begin(), files.end());
    return files;
}

}  // namespace

int main(int argc, char** argv) {
    std::string_view mode = argc == 3 ? argv[1] : "";
    if (mode != "check" && mode != "update") {
        fmt::print(stderr, "usage: doc-regions check|update ROOT\n");
        return 2;
    }
    try {
        Run run;
        run.root = argv[2];
        run.update = mode == "update";
        if (!fs::is_directory(run.root)) {
            fmt::print(stderr, "doc-regions: {} is not a directory\n", argv[2]);
            return 2;
        }
        auto files = markdown_files(run.root);
        for (const auto& f : files) run.process(f);
        if (run.source_problems > 0)
            fmt::print("doc-regions: {} marker problem(s) in quoted source files\n", run.source_problems);
        if (run.unresolved > 0)
            fmt::print("doc-regions: {} quote(s) name a missing file or region, or lack their code block: "
                       "'update' cannot fix those\n", run.unresolved);
        bool ok = run.unresolved == 0 && run.source_problems == 0 && run.stale == 0;
        if (run.update)
            fmt::print("doc-regions: updated {} of {} quotes in {} files\n", run.updated, run.quotes, files.size());
        else if (ok)
            fmt::print("doc-regions: {} quotes in {} files checked, all match\n", run.quotes, files.size());
        else if (run.stale + run.unresolved > 0)
            fmt::print("doc-regions: {} of {} quotes are out of date; run 'build/bin/doc-regions update .' to "
                       "refresh them\n", run.stale + run.unresolved, run.quotes);
        return ok ? 0 : 1;
    } catch (const std::exception& e) {
        fmt::print(stderr, "doc-regions: {}\n", e.what());
        return 2;
    }
}
