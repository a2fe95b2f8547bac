# Standalone build against an installed ITK.
#
# Debian's ITK ships no ITKModuleExternal.cmake, so we read itk-module.cmake
# ourselves: a local itk_module() captures the module's name and dependency
# lists, then find_package(ITK) asks for exactly those components. Nothing of
# ITK's own CMake code is copied here.

macro(itk_module _name)
  cmake_parse_arguments(_agcl_mod
    "ENABLE_SHARED;EXCLUDE_FROM_DEFAULT"
    "DESCRIPTION"
    "DEPENDS;PRIVATE_DEPENDS;COMPILE_DEPENDS;TEST_DEPENDS;FACTORY_NAMES"
    ${ARGN})
  set(AGCL_ITK_MODULE_NAME "${_name}")
  set(AGCL_ITK_MODULE_DEPENDS ${_agcl_mod_DEPENDS})
  set(AGCL_ITK_MODULE_PRIVATE_DEPENDS ${_agcl_mod_PRIVATE_DEPENDS})
  set(AGCL_ITK_MODULE_COMPILE_DEPENDS ${_agcl_mod_COMPILE_DEPENDS})
  set(AGCL_ITK_MODULE_TEST_DEPENDS ${_agcl_mod_TEST_DEPENDS})
  set(AGCL_ITK_MODULE_DESCRIPTION "${_agcl_mod_DESCRIPTION}")
endmacro()

# Reads itk-module.cmake and finds the ITK components it names.
# Sets AGCL_ITK_MODULE_NAME, AGCL_ITK_MODULE_*DEPENDS, ITK_LIBRARIES.
macro(agcl_standalone_itk_module _module_file)
  include("${_module_file}")
  if(NOT AGCL_ITK_MODULE_NAME)
    message(FATAL_ERROR "${_module_file} does not call itk_module(<name> ...)")
  endif()
  set(_agcl_itk_components
    ${AGCL_ITK_MODULE_DEPENDS}
    ${AGCL_ITK_MODULE_PRIVATE_DEPENDS}
    ${AGCL_ITK_MODULE_COMPILE_DEPENDS})
  if(BUILD_TESTING)
    list(APPEND _agcl_itk_components ${AGCL_ITK_MODULE_TEST_DEPENDS})
  endif()
  # The CLI reads and writes any image format ITK knows, DICOM series (GDCM), and the JPEG
  # photographs and PNG label maps of PASCAL VOC.
  list(APPEND _agcl_itk_components ITKIONIFTI ITKIONRRD ITKIOMeta ITKIOPNG ITKIOJPEG ITKIOGDCM)
  list(REMOVE_DUPLICATES _agcl_itk_components)
  find_package(ITK 5.2 REQUIRED COMPONENTS ${_agcl_itk_components})
  # Without ITK_USE_FILE the image IO factories are not registered.
  include(${ITK_USE_FILE})
  message(STATUS "AGCL: ITK ${ITK_VERSION} from ${ITK_DIR} (components: ${_agcl_itk_components})")
endmacro()
