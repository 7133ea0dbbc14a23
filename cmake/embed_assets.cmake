# embed_assets.cmake - turns a directory of web assets into a C++ source file.
#
# Run in script mode:
#   cmake -DASSET_DIR=<dir> -DOUTPUT=<file.cpp> [-DHEADER=embedded_assets.hpp]
#         [-DNAMESPACE=demo] -P embed_assets.cmake
#
# Every regular file under ASSET_DIR (recursively; dot-files and editor backups
# skipped) becomes one entry of a sorted table, with
#   path          "/" + its path relative to ASSET_DIR ("/index.html", "/img/logo.svg")
#   content_type  from its extension
#   body          its bytes, written as a char array of hex escapes (no string
#                 literal, so any content is safe, NUL bytes included)
# and the generated file defines
#   const Asset* <NAMESPACE>::find_asset(std::string_view path) noexcept;
# as declared in HEADER. "/" finds "/index.html".

cmake_minimum_required(VERSION 3.21)

foreach(_var ASSET_DIR OUTPUT)
    if(NOT DEFINED ${_var} OR "${${_var}}" STREQUAL "")
        message(FATAL_ERROR "embed_assets.cmake: -D${_var}=... is required")
    endif()
endforeach()
if(NOT DEFINED HEADER)
    set(HEADER "embedded_assets.hpp")
endif()
if(NOT DEFINED NAMESPACE)
    set(NAMESPACE "demo")
endif()

function(_embed_content_type file out_var)
    get_filename_component(_ext "${file}" LAST_EXT)
    string(TOLOWER "${_ext}" _ext)
    if(_ext STREQUAL ".html" OR _ext STREQUAL ".htm")
        set(_type "text/html; charset=utf-8")
    elseif(_ext STREQUAL ".js" OR _ext STREQUAL ".mjs")
        set(_type "text/javascript; charset=utf-8")
    elseif(_ext STREQUAL ".css")
        set(_type "text/css; charset=utf-8")
    elseif(_ext STREQUAL ".json" OR _ext STREQUAL ".map")
        set(_type "application/json")
    elseif(_ext STREQUAL ".webmanifest")
        set(_type "application/manifest+json")
    elseif(_ext STREQUAL ".svg")
        set(_type "image/svg+xml")
    elseif(_ext STREQUAL ".png")
        set(_type "image/png")
    elseif(_ext STREQUAL ".jpg" OR _ext STREQUAL ".jpeg")
        set(_type "image/jpeg")
    elseif(_ext STREQUAL ".gif")
        set(_type "image/gif")
    elseif(_ext STREQUAL ".webp")
        set(_type "image/webp")
    elseif(_ext STREQUAL ".ico")
        set(_type "image/x-icon")
    elseif(_ext STREQUAL ".txt")
        set(_type "text/plain; charset=utf-8")
    elseif(_ext STREQUAL ".woff2")
        set(_type "font/woff2")
    elseif(_ext STREQUAL ".woff")
        set(_type "font/woff")
    else()
        set(_type "application/octet-stream")
    endif()
    set(${out_var} "${_type}" PARENT_SCOPE)
endfunction()

# C++ string literal for an arbitrary path (escape backslash and quote).
function(_embed_cxx_string text out_var)
    string(REPLACE "\\" "\\\\" text "${text}")
    string(REPLACE "\"" "\\\"" text "${text}")
    set(${out_var} "\"${text}\"" PARENT_SCOPE)
endfunction()

get_filename_component(ASSET_DIR "${ASSET_DIR}" ABSOLUTE)
if(IS_DIRECTORY "${ASSET_DIR}")
    file(GLOB_RECURSE _files LIST_DIRECTORIES false RELATIVE "${ASSET_DIR}" "${ASSET_DIR}/*")
else()
    set(_files "")
endif()

set(_assets "")
foreach(_rel IN LISTS _files)
    get_filename_component(_name "${_rel}" NAME)
    if(_name MATCHES "^\\." OR _name MATCHES "~$" OR _name MATCHES "\\.(swp|orig|rej|bak)$")
        continue()
    endif()
    if(_rel MATCHES "(^|/)\\.")  # anything inside a hidden directory
        continue()
    endif()
    list(APPEND _assets "${_rel}")
endforeach()
list(SORT _assets)

set(_arrays "")
set(_table "")
set(_index 0)
foreach(_rel IN LISTS _assets)
    file(READ "${ASSET_DIR}/${_rel}" _hex HEX)
    string(LENGTH "${_hex}" _hex_len)
    math(EXPR _size "${_hex_len} / 2")
    if(_size EQUAL 0)
        string(APPEND _arrays "// /${_rel} (empty)\nconstexpr char asset_${_index}[1] = {'\\0'};\n\n")
    else()
        # 16 bytes per line, each byte as '\xNN'.
        string(REGEX REPLACE "([0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f])"
            "\\1\n    " _hex "${_hex}")
        string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," _hex "${_hex}")
        string(APPEND _arrays
            "// /${_rel} (${_size} bytes)\n"
            "constexpr char asset_${_index}[] = {\n    ${_hex}\n};\n\n")
    endif()
    _embed_content_type("${_rel}" _type)
    _embed_cxx_string("/${_rel}" _path_literal)
    string(APPEND _table
        "    Asset{${_path_literal}, \"${_type}\", std::string_view(asset_${_index}, ${_size})},\n")
    math(EXPR _index "${_index} + 1")
endforeach()

list(LENGTH _assets _count)
if(_count EQUAL 0)
    set(_table_decl "constexpr const Asset* assets_begin = nullptr;\n")
else()
    set(_table_decl "constexpr Asset assets[] = {\n${_table}};\n")
    string(APPEND _table_decl "constexpr const Asset* assets_begin = assets;\n")
endif()
string(APPEND _table_decl "constexpr const Asset* assets_end = assets_begin + ${_count};\n")

set(_content "// Generated by cmake/embed_assets.cmake from ${ASSET_DIR}. Do not edit.
// ${_count} asset(s).
#include \"${HEADER}\"

#include <cstddef>
#include <string_view>

namespace ${NAMESPACE} {
namespace {

${_arrays}${_table_decl}
}  // namespace

const Asset* find_asset(std::string_view path) noexcept {
    if (path == \"/\") {
        path = \"/index.html\";
    }
    for (const Asset* asset = assets_begin; asset != assets_end; ++asset) {
        if (asset->path == path) {
            return asset;
        }
    }
    return nullptr;
}

}  // namespace ${NAMESPACE}
")

# Write through a temporary file so that a failed run never leaves half a file.
file(WRITE "${OUTPUT}.tmp" "${_content}")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
