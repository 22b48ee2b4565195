// The web console: static files (web/) embedded in the binary at build time (cmake/EmbedWeb.cmake) and
// served at / and /assets/… without a token. Everything the console shows comes from the API, called by
// the browser with the user's bearer token like any other client (docs/console.md).
#pragma once

#include <span>
#include <string_view>

#include "server/http_transport.h"

namespace fastgpu::server {

struct ConsoleAsset {
  std::string_view path;  // URL path: "/" for index.html, "/assets/app.js"
  std::string_view body;
  std::string_view etag;  // quoted: "\"1a2b…\"" (SHA-256 prefix of the body)
};

// Every embedded file (generated source).
std::span<const ConsoleAsset> ConsoleAssets();

// "text/javascript; charset=utf-8" for "/assets/app.js"; "application/octet-stream" when unknown.
std::string_view ConsoleContentType(std::string_view path);

// Headers every console response carries: a strict Content-Security-Policy (files from this origin only,
// no inline script or style, no framing), X-Frame-Options, X-Content-Type-Options, Referrer-Policy.
void SetConsoleSecurityHeaders(Response& res);

// Serves GET / (also /index.html) and GET /assets/<name> from the embedded files: 200 with the file, or
// 304 when If-None-Match names its ETag. Returns false for any other request (the API's routes).
bool ServeConsole(const Request& req, Response& res);

}  // namespace fastgpu::server
