# cmake -DCOMMAND="agcl;arg;..." -DEXPECTED_RC=N [-DEXPECTED_OUTPUT=regex] [-DENV="A=1;B=2"] -P RunAndCheck.cmake
# Runs the command and fails unless its exit code is EXPECTED_RC and its output
# (stdout + stderr) matches EXPECTED_OUTPUT.
if(ENV)
  foreach(_kv IN LISTS ENV)
    string(REGEX MATCH "^([^=]+)=(.*)$" _m "${_kv}")
    set(ENV{${CMAKE_MATCH_1}} "${CMAKE_MATCH_2}")
  endforeach()
endif()
string(REPLACE "|" ";" _command "${COMMAND}")
execute_process(COMMAND ${_command} RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _err)
set(_all "${_out}${_err}")
if(NOT "${_rc}" STREQUAL "${EXPECTED_RC}")
  message(FATAL_ERROR "exit code ${_rc}, expected ${EXPECTED_RC}\n--- output ---\n${_all}")
endif()
if(DEFINED EXPECTED_OUTPUT AND NOT _all MATCHES "${EXPECTED_OUTPUT}")
  message(FATAL_ERROR "output does not match '${EXPECTED_OUTPUT}'\n--- output ---\n${_all}")
endif()
message(STATUS "exit code ${_rc} as expected\n${_all}")
