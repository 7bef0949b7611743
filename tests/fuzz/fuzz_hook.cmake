# Passed by deploy/fuzz.sh as CMAKE_PROJECT_INCLUDE so the fuzz targets build even before
# tests/CMakeLists.txt adds tests/fuzz itself: at the end of the top-level CMakeLists (when
# every library target exists) it defines them. If tests/fuzz was already added, the guard
# in fuzz_targets.cmake makes this a no-op.
option(CTSYNC_FUZZ "Build the libFuzzer targets (clang only)" OFF)
if(CTSYNC_FUZZ)
  # DEFER expands variables when the call runs; EVAL fixes this file's folder now.
  cmake_language(EVAL CODE "cmake_language(DEFER DIRECTORY \"${CMAKE_SOURCE_DIR}\" CALL include \"${CMAKE_CURRENT_LIST_DIR}/fuzz_targets.cmake\")")
endif()
