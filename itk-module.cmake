# The one place where the module's ITK dependencies are declared.
# Read by ITK's module system when built inside an ITK source tree, and by
# cmake/AGCLStandaloneITKModule.cmake when built against an installed ITK.
set(DOCUMENTATION "Multi-organ segmentation of abdominal CT with attention-guided,
semantic-aware contrastive learning (AGCL). ITK filters run their network stages
through LibTorch on CPU or CUDA.")

itk_module(AGCLSegmentation
  ENABLE_SHARED
  DEPENDS
    ITKCommon
  COMPILE_DEPENDS
    ITKImageGrid
    ITKImageIntensity
    ITKImageFunction
    ITKLabelMap
    ITKMathematicalMorphology
    ITKBinaryMathematicalMorphology
    ITKThresholding
    ITKConnectedComponents
    ITKDistanceMap
    ITKSmoothing
  PRIVATE_DEPENDS
    ITKIOImageBase
  TEST_DEPENDS
    ITKTestKernel
    ITKIOImageBase
    ITKIONIFTI
    ITKIONRRD
    ITKIOMeta
    ITKIOPNG
    ITKIOJPEG
    ITKIOGDCM
  DESCRIPTION
    "${DOCUMENTATION}"
  EXCLUDE_FROM_DEFAULT
)
