# FindAsio
# --------
# Finds standalone (non-Boost) Asio, which ships no CMake package of its own.
#
# Result variables:
#   Asio_FOUND, Asio_INCLUDE_DIRS, Asio_VERSION
# Cache variable:
#   Asio_INCLUDE_DIR - the directory that holds asio.hpp
# Imported target:
#   Asio::Asio - INTERFACE target with the include directory, ASIO_STANDALONE
#                and Threads::Threads
#
# notify installs this file beside notifyConfig.cmake, which puts its own
# directory in front of CMAKE_MODULE_PATH while it looks for its dependencies.

find_path(Asio_INCLUDE_DIR
    NAMES asio.hpp
    HINTS "${ASIO_ROOT}" "$ENV{ASIO_ROOT}" "${Asio_ROOT}" "$ENV{Asio_ROOT}"
    PATH_SUFFIXES include asio/include
    DOC "Directory containing standalone Asio's asio.hpp")
mark_as_advanced(Asio_INCLUDE_DIR)

set(Asio_VERSION "")
if(Asio_INCLUDE_DIR AND EXISTS "${Asio_INCLUDE_DIR}/asio/version.hpp")
    file(STRINGS "${Asio_INCLUDE_DIR}/asio/version.hpp" _asio_version_line
        REGEX "^#[ \t]*define[ \t]+ASIO_VERSION[ \t]+[0-9]+")
    if(_asio_version_line MATCHES "ASIO_VERSION[ \t]+([0-9]+)")
        # ASIO_VERSION is XYYYZZ: X major, YYY minor, ZZ subminor.
        math(EXPR _asio_major "${CMAKE_MATCH_1} / 100000")
        math(EXPR _asio_minor "${CMAKE_MATCH_1} / 100 % 1000")
        math(EXPR _asio_patch "${CMAKE_MATCH_1} % 100")
        set(Asio_VERSION "${_asio_major}.${_asio_minor}.${_asio_patch}")
    endif()
    unset(_asio_version_line)
    unset(_asio_major)
    unset(_asio_minor)
    unset(_asio_patch)
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Asio
    REQUIRED_VARS Asio_INCLUDE_DIR
    VERSION_VAR Asio_VERSION)

if(Asio_FOUND)
    set(Asio_INCLUDE_DIRS "${Asio_INCLUDE_DIR}")
    if(NOT TARGET Threads::Threads)
        set(THREADS_PREFER_PTHREAD_FLAG ON)
        find_package(Threads QUIET)
    endif()
    if(NOT TARGET Asio::Asio)
        add_library(Asio::Asio INTERFACE IMPORTED)
        set_target_properties(Asio::Asio PROPERTIES
            INTERFACE_INCLUDE_DIRECTORIES "${Asio_INCLUDE_DIR}"
            INTERFACE_COMPILE_DEFINITIONS "ASIO_STANDALONE")
        if(TARGET Threads::Threads)
            set_property(TARGET Asio::Asio APPEND PROPERTY
                INTERFACE_LINK_LIBRARIES Threads::Threads)
        endif()
    endif()
endif()
