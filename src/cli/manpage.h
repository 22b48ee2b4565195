// `fastgpu manpage`: the manual page (roff, man(7)) written from the same CLI11 definitions as --help and the
// shell completion, so that the three never disagree.
#pragma once

#include <ostream>
#include <string>

namespace CLI {
class App;
}

namespace fastgpu::cli {

// man(7) text: backslashes escaped, '-' as \-, a leading '.' or '\'' guarded.
std::string RoffEscape(const std::string& text);
// The page's head: .TH, NAME, SYNOPSIS, DESCRIPTION and the global options of `app` (the top-level command).
void WriteManHead(const CLI::App& app, const std::string& version, const std::string& date, std::ostream& out);
// One section per command under `verb` (a subcommand of the top-level app): its description, arguments,
// options and examples (footer), then its subcommands, depth first.
void WriteManVerb(const CLI::App& verb, std::ostream& out);
// EXIT STATUS, ENVIRONMENT, FILES and SEE ALSO.
void WriteManTail(std::ostream& out);

}  // namespace fastgpu::cli
