# Defines one executable per tests/fuzz/<name>_fuzz.cc (in build/bin). Included from
# tests/fuzz/CMakeLists.txt, or from fuzz_hook.cmake; paths are relative to this file so
# both work. Defining the targets twice is a no-op.
if(TARGET packet_pipeline_fuzz)
  return()
endif()
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "CTSYNC_FUZZ needs clang (CC=clang CXX=clang++), not ${CMAKE_CXX_COMPILER_ID}")
endif()

set(CTSYNC_FUZZ_SANITIZERS -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
    -fno-omit-frame-pointer)
file(GLOB ctsync_fuzz_srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*_fuzz.cc)
foreach(src ${ctsync_fuzz_srcs})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_options(${name} PRIVATE ${CTSYNC_FUZZ_SANITIZERS})
  target_link_options(${name} PRIVATE ${CTSYNC_FUZZ_SANITIZERS})
  # The linker keeps only what a target uses.
  target_link_libraries(${name} PRIVATE ctsync_sync ctsync_storage ctsync_proto ctsync_core)
endforeach()
# The config parser alone, not ctsyncd_lib: the daemon's other files (sockets, threads)
# are not under test and need not build for the fuzzer.
target_sources(config_parser_fuzz PRIVATE ${PROJECT_SOURCE_DIR}/tools/ctsyncd/config.cc)
