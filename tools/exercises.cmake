# The exercises (tools/exercise.py; docs/teaching.md). For every code exercise: its starter,
# generated at build time from the chapter's reference source, built as bin/starter-ID, and the
# test exercise_ID that proves the starter fails exactly the checks the exercise lists. For every
# measure exercise: exercise_ID proves the reference answer is accepted and a wrong one is not.
# A student's copy, work/ID/, is built as bin/work-ID, only when asked for (a copy that does not
# compile must not break the course's own build).
find_package(Python3 3.11 REQUIRED COMPONENTS Interpreter)  # tomllib
set(COURSE_EXERCISE_TOOL ${PROJECT_SOURCE_DIR}/tools/exercise.py)

# The chapter's server, built again from `source` in place of its file `file`.
function(_course_exercise_server target chapter file source)
  get_target_property(sources ${chapter} SOURCES)
  get_target_property(dir ${chapter} SOURCE_DIR)
  get_target_property(libs ${chapter} LINK_LIBRARIES)
  set(list)
  foreach(s IN LISTS sources)
    if(s STREQUAL file)
      list(APPEND list ${source})
    else()
      list(APPEND list ${dir}/${s})
    endif()
  endforeach()
  add_executable(${target} ${ARGN} ${list})
  target_include_directories(${target} PRIVATE ${dir})
  target_link_libraries(${target} PRIVATE ${libs})
endfunction()

function(course_exercise_starter id chapter file)
  set(out ${CMAKE_BINARY_DIR}/exercises/${id}/${file})
  add_custom_command(OUTPUT ${out}
    COMMAND Python3::Interpreter ${COURSE_EXERCISE_TOOL} starter ${id} ${out}
    DEPENDS ${COURSE_EXERCISE_TOOL} ${PROJECT_SOURCE_DIR}/${chapter}/${file} ${PROJECT_SOURCE_DIR}/${chapter}/exercises.toml
    COMMENT "Starter of exercise ${id}")
  _course_exercise_server(starter-${id} ${chapter} ${file} ${out})
endfunction()

function(course_exercise_work id chapter file)
  _course_exercise_server(work-${id} ${chapter} ${file} ${PROJECT_SOURCE_DIR}/work/${id}/${file} EXCLUDE_FROM_ALL)
endfunction()

function(course_exercise_verify id chapter)
  add_test(NAME exercise_${id}
    COMMAND Python3::Interpreter ${COURSE_EXERCISE_TOOL} verify ${id} --build-dir ${CMAKE_BINARY_DIR})
  # It runs two test programs at once (the chapter's and the contract's): it takes both cores.
  set_tests_properties(exercise_${id} PROPERTIES TIMEOUT 900 LABELS exercise PROCESSORS 2)
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
