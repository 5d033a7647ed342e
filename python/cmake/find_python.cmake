# Finds the Python 3 interpreter + development files and pybind11 for the
# bindings; sets TCPX_HAVE_PYTHON. Nothing here is required: without them the
# rest of the project builds as before.
#
# Which interpreter: -DPython3_EXECUTABLE wins. Otherwise the first python3 on
# PATH that can import pytest, then /usr/bin/python3, then whatever
# FindPython3 picks: a pyenv shim or bare venv first on PATH would otherwise
# win and the tests (pytest, numpy from Debian packages) would not run there.
set(TCPX_HAVE_PYTHON OFF)
if(NOT Python3_EXECUTABLE)
  find_program(tcpx_path_python3 NAMES python3 NO_CACHE)
  foreach(cand ${tcpx_path_python3} /usr/bin/python3)
    if(EXISTS ${cand})
      execute_process(COMMAND ${cand} -c "import pytest"
        RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
      if(rc EQUAL 0)
        set(Python3_EXECUTABLE ${cand})
        break()
      endif()
    endif()
  endforeach()
endif()
find_package(Python3 COMPONENTS Interpreter Development.Module)
if(Python3_FOUND)
  find_package(pybind11 CONFIG QUIET)
endif()
if(Python3_FOUND AND pybind11_FOUND)
  set(TCPX_HAVE_PYTHON ON)
else()
  message(STATUS "tcpx-p2p: Python bindings skipped (need python3-dev and pybind11-dev)")
endif()
