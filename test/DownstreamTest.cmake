# Installs the built module into a scratch prefix, then configures, builds and runs
# test/downstream against it with find_package(AGCLSegmentation), three ways: our package alone,
# and after or before the project's own find_package(ITK COMPONENTS ...) + include(ITK_USE_FILE).
# Each way builds read_segment_write (reader -> AGCLSegmentationFilter ->
# LabelStatisticsImageFilter -> writer, NIfTI in and out) and runs it on a phantom CT with the
# shipped model; "none" also builds and runs main.cxx.
# cmake -DBUILD_DIR=... -DSOURCE_DIR=... -DWORK_DIR=... -P DownstreamTest.cmake
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix
  RESULT_VARIABLE rc OUTPUT_QUIET)
if(rc)
  message(FATAL_ERROR "cmake --install failed: ${rc}")
endif()
execute_process(COMMAND ${BUILD_DIR}/apps/agcl/agcl phantom --subjects 1 --modality contrast --size 96 96 40
  --split 0:0:1 --out ${WORK_DIR}/phantom RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
if(rc)
  message(FATAL_ERROR "agcl phantom failed: ${err}")
endif()
set(ct ${WORK_DIR}/phantom/images/subject_000_contrast.nii.gz)

foreach(order none before after)
  set(build ${WORK_DIR}/build-${order})
  execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/test/downstream -B ${build} -G Ninja
    -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=Release -DAGCL_ITK_ORDER=${order}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(rc)
    message(FATAL_ERROR "configuring the downstream project (${order}) failed:\n${out}\n${err}")
  endif()
  execute_process(COMMAND ${CMAKE_COMMAND} --build ${build} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(rc)
    message(FATAL_ERROR "building the downstream project (${order}) failed:\n${out}\n${err}")
  endif()
  if(order STREQUAL "none")
    execute_process(COMMAND ${build}/downstream WORKING_DIRECTORY ${build}
      RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(rc OR NOT out MATCHES "downstream value 3")
      message(FATAL_ERROR "downstream program failed (${rc}):\n${out}\n${err}")
    endif()
    message(STATUS "${out}")
  endif()
  set(labels ${WORK_DIR}/labels-${order}.nii.gz)
  execute_process(COMMAND ${build}/read_segment_write ${ct} ${SOURCE_DIR}/models/phantom-demo.agcl ${labels}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  # The shipped model finds the liver (label 6) in a phantom of its training resolution.
  if(rc OR NOT EXISTS ${labels} OR NOT out MATCHES "label 6: [1-9][0-9]* voxels")
    message(FATAL_ERROR "read_segment_write (${order}) failed (${rc}):\n${out}\n${err}")
  endif()
  message(STATUS "${order}: ${out}")
endforeach()
