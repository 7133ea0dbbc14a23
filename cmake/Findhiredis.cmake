# Findhiredis
# -----------
# Finds hiredis, the Redis C client (notify::redis uses its RESP reader and command
# formatter).
#
# Result variables:
#   hiredis_FOUND, hiredis_INCLUDE_DIRS, hiredis_LIBRARIES, hiredis_VERSION
# Cache variables:
#   hiredis_INCLUDE_DIR - the directory that holds hiredis/hiredis.h
#   hiredis_LIBRARY     - the library
# Imported target:
#   hiredis::hiredis
#
# A hiredis::hiredis target that already exists (hiredis >= 1.0 ships a CMake package
# that defines it, or a parent project built hiredis) is used as it is. Otherwise
# pkg-config's answer is used as a hint for find_path/find_library.
#
# notify installs this file beside notifyConfig.cmake, which puts its own directory in
# front of CMAKE_MODULE_PATH while it looks for its dependencies.

if(TARGET hiredis::hiredis)
    set(hiredis_FOUND TRUE)
    return()
endif()

find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
    pkg_check_modules(PC_hiredis QUIET hiredis)
endif()

# pkg-config's include dir is .../include/hiredis (for #include <hiredis.h>); notify
# includes <hiredis/hiredis.h>, so look for that from its parent too.
set(_hiredis_include_hints "")
foreach(_dir IN LISTS PC_hiredis_INCLUDE_DIRS)
    list(APPEND _hiredis_include_hints "${_dir}")
    get_filename_component(_parent "${_dir}" DIRECTORY)
    list(APPEND _hiredis_include_hints "${_parent}")
endforeach()

find_path(hiredis_INCLUDE_DIR
    NAMES hiredis/hiredis.h
    HINTS ${_hiredis_include_hints} "${hiredis_ROOT}" "$ENV{hiredis_ROOT}"
    PATH_SUFFIXES include
    DOC "Directory containing hiredis/hiredis.h")
find_library(hiredis_LIBRARY
    NAMES hiredis
    HINTS ${PC_hiredis_LIBRARY_DIRS} "${hiredis_ROOT}" "$ENV{hiredis_ROOT}"
    PATH_SUFFIXES lib
    DOC "The hiredis library")
mark_as_advanced(hiredis_INCLUDE_DIR hiredis_LIBRARY)
unset(_hiredis_include_hints)
unset(_parent)
unset(_dir)

set(hiredis_VERSION "")
if(hiredis_INCLUDE_DIR AND EXISTS "${hiredis_INCLUDE_DIR}/hiredis/hiredis.h")
    file(STRINGS "${hiredis_INCLUDE_DIR}/hiredis/hiredis.h" _hiredis_version_lines
        REGEX "^#define HIREDIS_(MAJOR|MINOR|PATCH) [0-9]+")
    foreach(_part MAJOR MINOR PATCH)
        string(REGEX MATCH "HIREDIS_${_part} ([0-9]+)" _match "${_hiredis_version_lines}")
        set(_hiredis_${_part} "${CMAKE_MATCH_1}")
    endforeach()
    if(NOT _hiredis_MAJOR STREQUAL "")
        set(hiredis_VERSION "${_hiredis_MAJOR}.${_hiredis_MINOR}.${_hiredis_PATCH}")
    endif()
    unset(_hiredis_version_lines)
    unset(_match)
    unset(_part)
    unset(_hiredis_MAJOR)
    unset(_hiredis_MINOR)
    unset(_hiredis_PATCH)
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(hiredis
    REQUIRED_VARS hiredis_LIBRARY hiredis_INCLUDE_DIR
    VERSION_VAR hiredis_VERSION)

if(hiredis_FOUND)
    set(hiredis_INCLUDE_DIRS "${hiredis_INCLUDE_DIR}")
    set(hiredis_LIBRARIES "${hiredis_LIBRARY}")
    if(NOT TARGET hiredis::hiredis)
        add_library(hiredis::hiredis UNKNOWN IMPORTED)
        set_target_properties(hiredis::hiredis PROPERTIES
            IMPORTED_LOCATION "${hiredis_LIBRARY}"
            INTERFACE_INCLUDE_DIRECTORIES "${hiredis_INCLUDE_DIR}")
    endif()
endif()
