# Drives the package tests (registered by tests/CMakeLists.txt):
#
#   cmake -DMODE=find_package|add_subdirectory
#         -DNOTIFY_SOURCE_DIR=<notify source> -DNOTIFY_BUILD_DIR=<built notify>
#         -DWORK_DIR=<scratch dir> [-DCONFIG=<cfg>] [-DGENERATOR=<gen>]
#         [-DCXX_COMPILER=<c++>] [-DCXX_FLAGS=<flags>] [-DLINKER_FLAGS=<flags>]
#         [-DLAUNCHER=<ccache>] [-DSHARED=ON|OFF] [-DJOBS=2]
#         [-DCOMPONENTS=<comma-separated components notify was built with>]
#         -P run.cmake
#
# find_package:     installs the already-built notify into WORK_DIR/prefix, then
#                   configures, builds and runs tests/package/find_package/ against
#                   it, then builds the same main.cpp with the flags notify.pc gives.
# add_subdirectory: configures, builds and runs tests/package/add_subdirectory/,
#                   which builds notify from source as a subproject
#                   (BUILD_SHARED_LIBS=SHARED).

cmake_minimum_required(VERSION 3.21)

foreach(_var MODE NOTIFY_SOURCE_DIR NOTIFY_BUILD_DIR WORK_DIR)
    if(NOT DEFINED ${_var} OR "${${_var}}" STREQUAL "")
        message(FATAL_ERROR "run.cmake: -D${_var}=... is required")
    endif()
endforeach()
if(NOT DEFINED JOBS OR JOBS STREQUAL "")
    set(JOBS 2)
endif()
if(NOT DEFINED CONFIG OR CONFIG STREQUAL "")
    set(CONFIG Release)
endif()

# Runs a command, echoing it first; stops the test on failure.
function(run_step)
    cmake_parse_arguments(PARSE_ARGV 0 _step "" "WORKING_DIRECTORY" "COMMAND")
    list(JOIN _step_COMMAND " " _shown)
    message(STATUS "[package:${MODE}] $ ${_shown}")
    if(NOT _step_WORKING_DIRECTORY)
        set(_step_WORKING_DIRECTORY "${WORK_DIR}")
    endif()
    execute_process(COMMAND ${_step_COMMAND}
        WORKING_DIRECTORY "${_step_WORKING_DIRECTORY}"
        RESULT_VARIABLE _rc)
    if(NOT _rc EQUAL 0)
        message(FATAL_ERROR "[package:${MODE}] FAILED (${_rc}): ${_shown}")
    endif()
endfunction()

# The configure arguments every consumer gets: same generator, compiler, build
# type and flags as the notify build under test.
set(_configure_args "-DCMAKE_BUILD_TYPE=${CONFIG}")
if(GENERATOR)
    list(APPEND _configure_args -G "${GENERATOR}")
endif()
if(CXX_COMPILER)
    list(APPEND _configure_args "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}")
endif()
if(CXX_FLAGS)
    list(APPEND _configure_args "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}")
endif()
if(LINKER_FLAGS)
    list(APPEND _configure_args
        "-DCMAKE_EXE_LINKER_FLAGS=${LINKER_FLAGS}"
        "-DCMAKE_SHARED_LINKER_FLAGS=${LINKER_FLAGS}")
endif()
if(LAUNCHER)
    list(APPEND _configure_args "-DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER}")
endif()

file(MAKE_DIRECTORY "${WORK_DIR}")

if(MODE STREQUAL "find_package")
    set(_prefix "${WORK_DIR}/prefix")
    set(_build "${WORK_DIR}/build")
    file(REMOVE_RECURSE "${_prefix}" "${_build}")

    run_step(COMMAND "${CMAKE_COMMAND}" --install "${NOTIFY_BUILD_DIR}"
        --prefix "${_prefix}" --config "${CONFIG}")

    run_step(COMMAND "${CMAKE_COMMAND}"
        -S "${NOTIFY_SOURCE_DIR}/tests/package/find_package"
        -B "${_build}"
        ${_configure_args}
        "-DCMAKE_PREFIX_PATH=${_prefix}"
        -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
        "-DNOTIFY_EXPECTED_PREFIX=${_prefix}"
        "-DNOTIFY_COMPONENTS=${COMPONENTS}")
    run_step(COMMAND "${CMAKE_COMMAND}" --build "${_build}" --config "${CONFIG}" -j ${JOBS})
    run_step(COMMAND "${_build}/app")
    string(REPLACE "," ";" _components "${COMPONENTS}")
    foreach(_component IN LISTS _components)
        run_step(COMMAND "${_build}/app-${_component}")
    endforeach()

    # The same program built with nothing but what notify.pc says.
    find_program(_pkg_config pkg-config)
    file(GLOB_RECURSE _pc_files "${_prefix}/*/notify.pc")
    if(NOT _pc_files)
        message(FATAL_ERROR "[package:${MODE}] notify.pc was not installed under ${_prefix}")
    endif()
    if(NOT _pkg_config)
        message(STATUS "[package:${MODE}] pkg-config not found: notify.pc not checked")
    elseif(NOT CXX_COMPILER)
        message(STATUS "[package:${MODE}] no CXX_COMPILER given: notify.pc not checked")
    else()
        list(GET _pc_files 0 _pc_file)
        get_filename_component(_pc_dir "${_pc_file}" DIRECTORY)
        set(ENV{PKG_CONFIG_PATH} "${_pc_dir}")
        execute_process(COMMAND "${_pkg_config}" --cflags --libs notify
            OUTPUT_VARIABLE _pc_flags OUTPUT_STRIP_TRAILING_WHITESPACE
            RESULT_VARIABLE _rc)
        if(NOT _rc EQUAL 0)
            message(FATAL_ERROR "[package:${MODE}] pkg-config --cflags --libs notify failed")
        endif()
        execute_process(COMMAND "${_pkg_config}" --modversion notify
            OUTPUT_VARIABLE _pc_version OUTPUT_STRIP_TRAILING_WHITESPACE)
        execute_process(COMMAND "${_pkg_config}" --variable=libdir notify
            OUTPUT_VARIABLE _pc_libdir OUTPUT_STRIP_TRAILING_WHITESPACE)
        separate_arguments(_pc_flags UNIX_COMMAND "${_pc_flags}")
        separate_arguments(_cxx_flags UNIX_COMMAND "${CXX_FLAGS} ${LINKER_FLAGS}")
        run_step(COMMAND "${CXX_COMPILER}" ${_cxx_flags} -std=c++17
            "-DNOTIFY_EXPECTED_VERSION=\"${_pc_version}\""
            "${NOTIFY_SOURCE_DIR}/tests/package/find_package/main.cpp"
            -o "${_build}/app-pkg-config"
            ${_pc_flags} "-Wl,-rpath,${_pc_libdir}")
        run_step(COMMAND "${_build}/app-pkg-config")
    endif()

elseif(MODE STREQUAL "add_subdirectory")
    set(_build "${WORK_DIR}/build")
    if(NOT DEFINED SHARED OR SHARED STREQUAL "")
        set(SHARED OFF)
    endif()
    # Kept between runs so that a second run is incremental; --fresh drops the cache.
    run_step(COMMAND "${CMAKE_COMMAND}" --fresh
        -S "${NOTIFY_SOURCE_DIR}/tests/package/add_subdirectory"
        -B "${_build}"
        ${_configure_args}
        "-DNOTIFY_SOURCE_DIR=${NOTIFY_SOURCE_DIR}"
        "-DBUILD_SHARED_LIBS=${SHARED}")
    run_step(COMMAND "${CMAKE_COMMAND}" --build "${_build}" --config "${CONFIG}" -j ${JOBS})
    run_step(COMMAND "${_build}/app")
    if(EXISTS "${_build}/app-sqlite")
        run_step(COMMAND "${_build}/app-sqlite")
    endif()
    if(EXISTS "${_build}/app-redis")
        run_step(COMMAND "${_build}/app-redis")
    endif()

else()
    message(FATAL_ERROR "run.cmake: unknown MODE '${MODE}'")
endif()

message(STATUS "[package:${MODE}] OK")
