#include "server/console.h"

#include <string>

namespace fastgpu::server {

namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// If-None-Match: "*" or a comma-separated list of (possibly weak) entity tags.
bool EtagMatches(std::string_view header, std::string_view etag) {
  if (header == "*") return true;
  size_t pos = 0;
  while (pos < header.size()) {
    size_t comma = header.find(',', pos);
    std::string_view tag = header.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    while (!tag.empty() && tag.front() == ' ') tag.remove_prefix(1);
    while (!tag.empty() && tag.back() == ' ') tag.remove_suffix(1);
    if (tag.substr(0, 2) == "W/") tag.remove_prefix(2);
    if (tag == etag) return true;
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return false;
}

}  // namespace

std::string_view ConsoleContentType(std::string_view path) {
  if (path == "/" || EndsWith(path, ".html")) return "text/html; charset=utf-8";
  if (EndsWith(path, ".js") || EndsWith(path, ".mjs")) return "text/javascript; charset=utf-8";
  if (EndsWith(path, ".css")) return "text/css; charset=utf-8";
  if (EndsWith(path, ".svg")) return "image/svg+xml";
  if (EndsWith(path, ".png")) return "image/png";
  if (EndsWith(path, ".ico")) return "image/x-icon";
  if (EndsWith(path, ".json")) return "application/json";
  if (EndsWith(path, ".txt")) return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

void SetConsoleSecurityHeaders(Response& res) {
  res.set_header("Content-Security-Policy",
                 "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                 "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                 "frame-ancestors 'none'");
  res.set_header("X-Frame-Options", "DENY");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_header("Cross-Origin-Opener-Policy", "same-origin");
  res.set_header("Cross-Origin-Resource-Policy", "same-origin");
  res.set_header("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()");
}

bool ServeConsole(const Request& req, Response& res) {
  if (req.method != "GET") return false;
  std::string_view path = req.path;
  if (path == "/index.html") path = "/";
  if (path != "/" && path.substr(0, 8) != "/assets/") return false;
  for (const auto& asset : ConsoleAssets()) {
    if (asset.path != path) continue;
    SetConsoleSecurityHeaders(res);
    res.set_header("ETag", std::string(asset.etag));
    // File names are not versioned: the browser keeps a copy but asks each time (a 304 costs no body).
    res.set_header("Cache-Control", "no-cache");
    if (EtagMatches(req.get_header_value("if-none-match"), asset.etag)) {
      res.status = 304;
      return true;
    }
    res.status = 200;
    res.set_content(std::string(asset.body), std::string(ConsoleContentType(path)));
    return true;
  }
  return false;
}

}  // namespace fastgpu::server
