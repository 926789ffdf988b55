# The exercises (tools/exercise.py; docs/teaching.md). For every code exercise: its starter,
# generated at build time from the chapter's reference source, built as bin/starter-ID (with the
# chapter's test programs that compile the file: bin/starter-ID.PROGRAM), and the
# test exercise_ID that proves the starter fails exactly the checks the exercise lists. For every
# measure exercise: exercise_ID proves the reference answer is accepted and a wrong one is not.
# A student's copy, work/ID/, is built as bin/work-ID, only when asked for (a copy that does not
# compile must not break the course's own build).
find_package(Python3 3.11 REQUIRED COMPONENTS Interpreter)  # tomllib
set(COURSE_EXERCISE_TOOL ${PROJECT_SOURCE_DIR}/tools/exercise.py)

# Every source of `target` with an absolute path, and those of the chapter's own static libraries
# it links, at any depth (chapter 07 keeps its runtime in two), in `out_sources`; the libraries from
# outside the chapter (common/, GoogleTest) in `out_libs`.
function(_course_exercise_sources target out_sources out_libs)
  get_target_property(dir ${target} SOURCE_DIR)
  get_target_property(sources ${target} SOURCES)
  get_target_property(links ${target} LINK_LIBRARIES)
  set(all_sources)
  set(all_libs)
  foreach(s IN LISTS sources)
    cmake_path(ABSOLUTE_PATH s BASE_DIRECTORY ${dir} OUTPUT_VARIABLE abs)
    list(APPEND all_sources ${abs})
  endforeach()
  foreach(lib IN LISTS links)
    set(inside FALSE)
    if(TARGET ${lib})
      get_target_property(type ${lib} TYPE)
      get_target_property(lib_dir ${lib} SOURCE_DIR)
      if(type STREQUAL "STATIC_LIBRARY" AND lib_dir STREQUAL dir)
        set(inside TRUE)
      endif()
    endif()
    if(inside)
      _course_exercise_sources(${lib} lib_sources lib_libs)
      list(APPEND all_sources ${lib_sources})
      list(APPEND all_libs ${lib_libs})
    elseif(lib)
      list(APPEND all_libs ${lib})
    endif()
  endforeach()
  list(REMOVE_DUPLICATES all_sources)
  list(REMOVE_DUPLICATES all_libs)
  set(${out_sources} ${all_sources} PARENT_SCOPE)
  set(${out_libs} ${all_libs} PARENT_SCOPE)
endfunction()

# The chapter's program `original` built again as `target`, from `source` in place of the chapter's
# file `file`, if the program compiles that file (directly or through one of the chapter's
# libraries); `out_built` says whether it does. The copy keeps the program's compile definitions
# (a test program's SERVER_BIN).
function(_course_exercise_program target original file source out_built)
  get_target_property(dir ${original} SOURCE_DIR)
  _course_exercise_sources(${original} sources libs)
  list(FIND sources ${dir}/${file} at)
  if(at EQUAL -1)
    set(${out_built} FALSE PARENT_SCOPE)
    return()
  endif()
  list(REMOVE_AT sources ${at})
  list(INSERT sources ${at} ${source})
  add_executable(${target} ${ARGN} ${sources})
  target_include_directories(${target} PRIVATE ${dir})
  target_link_libraries(${target} PRIVATE ${libs})
  get_target_property(defs ${original} COMPILE_DEFINITIONS)
  if(defs)
    target_compile_definitions(${target} PRIVATE ${defs})
  endif()
  get_target_property(deps ${original} MANUALLY_ADDED_DEPENDENCIES)
  if(deps)
    add_dependencies(${target} ${deps})
  endif()
  set(${out_built} TRUE PARENT_SCOPE)
endfunction()

# One exercise's programs for `who` (starter or work), from `source` in place of `file`: the
# server, who-ID, and every test program of the chapter that compiles the file, who-ID.PROGRAM (a
# test program that does not compile it tests the server it is given, COURSE_SERVER_NN, and is
# used as it is). build/exercises/ID/who-programs.txt lists, one per line, the chapter's test
# programs to run: tools/exercise.py reads it.
function(_course_exercise_build who id chapter file source)
  _course_exercise_program(${who}-${id} ${chapter} ${file} ${source} built ${ARGN})
  if(NOT built)
    message(FATAL_ERROR "exercise ${id}: ${chapter} is not built from ${file}")
  endif()
  get_target_property(dir ${chapter} SOURCE_DIR)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  set(programs)
  foreach(t IN LISTS targets)
    get_target_property(type ${t} TYPE)
    if(type STREQUAL "EXECUTABLE" AND t MATCHES "_test$")
      _course_exercise_program(${who}-${id}.${t} ${t} ${file} ${source} built ${ARGN})
      if(built)
        list(APPEND programs ${who}-${id}.${t})
      else()
        list(APPEND programs ${t})
      endif()
    endif()
  endforeach()
  list(JOIN programs "\n" text)
  file(CONFIGURE OUTPUT ${CMAKE_BINARY_DIR}/exercises/${id}/${who}-programs.txt CONTENT "${text}\n")
endfunction()

function(course_exercise_starter id chapter file)
  set(out ${CMAKE_BINARY_DIR}/exercises/${id}/${file})
  add_custom_command(OUTPUT ${out}
    COMMAND Python3::Interpreter ${COURSE_EXERCISE_TOOL} starter ${id} ${out}
    DEPENDS ${COURSE_EXERCISE_TOOL} ${PROJECT_SOURCE_DIR}/${chapter}/${file} ${PROJECT_SOURCE_DIR}/${chapter}/exercises.toml
    COMMENT "Starter of exercise ${id}")
  _course_exercise_build(starter ${id} ${chapter} ${file} ${out})
endfunction()

function(course_exercise_work id chapter file)
  _course_exercise_build(work ${id} ${chapter} ${file} ${PROJECT_SOURCE_DIR}/work/${id}/${file} EXCLUDE_FROM_ALL)
endfunction()

function(course_exercise_verify id chapter)
  add_test(NAME exercise_${id}
    COMMAND Python3::Interpreter ${COURSE_EXERCISE_TOOL} verify ${id} --build-dir ${CMAKE_BINARY_DIR}
            --sanitize "${COURSE_SANITIZE}")
  # It runs two test programs at once (the chapter's and the contract's): it takes both cores.
  set_tests_properties(exercise_${id} PROPERTIES TIMEOUT 900 LABELS exercise PROCESSORS 2 SKIP_RETURN_CODE 77)
endfunction()

file(GLOB _exercise_files CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/[0-9][0-9]-*/exercises.toml
     ${PROJECT_SOURCE_DIR}/work/*/*.cpp)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_exercise_files} ${COURSE_EXERCISE_TOOL})
execute_process(
  COMMAND ${Python3_EXECUTABLE} ${COURSE_EXERCISE_TOOL} cmake-targets ${CMAKE_BINARY_DIR}/exercise-targets.cmake
  RESULT_VARIABLE _exercise_rc)
if(NOT _exercise_rc EQUAL 0)
  message(FATAL_ERROR "tools/exercise.py cmake-targets failed (its message is above)")
endif()
include(${CMAKE_BINARY_DIR}/exercise-targets.cmake)

# Cheap checks over all of them: every row of docs/pitfalls.md is a fix exercise, every chapter has
# three or more, every README names its exercises; the GitHub Classroom configuration is current.
add_test(NAME exercises_lint COMMAND Python3::Interpreter ${COURSE_EXERCISE_TOOL} lint)
add_test(NAME exercises_classroom_config_current
  COMMAND Python3::Interpreter ${COURSE_EXERCISE_TOOL} classroom --check)
# The tool's own machinery on fakes: a check that hangs, a test program that crashes, the edits.
add_test(NAME exercise_tool_selftest COMMAND Python3::Interpreter ${PROJECT_SOURCE_DIR}/tools/exercise_test.py)
