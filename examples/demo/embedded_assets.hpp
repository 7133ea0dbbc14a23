// The demo page's files (examples/demo/web/*), compiled into notify-demo.
//
// The definitions are generated at build time by cmake/embed_assets.cmake into
// <build>/examples/demo/embedded_assets.cpp, and regenerated whenever a file
// under examples/demo/web/ changes.
#pragma once

#include <string_view>

namespace demo {

struct Asset {
  std::string_view path;          // "/index.html", "/app.js", "/img/logo.svg", ...
  std::string_view content_type;  // "text/html; charset=utf-8", "image/png", ...
  std::string_view body;          // the file's bytes (may contain NULs)
};

// The asset served at `path` (an exact match, no query string), or nullptr.
// "/" finds "/index.html". The returned object lives for the whole program.
const Asset* find_asset(std::string_view path) noexcept;

}  // namespace demo
