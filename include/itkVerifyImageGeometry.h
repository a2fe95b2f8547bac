/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkVerifyImageGeometry_h
#define itkVerifyImageGeometry_h

#include "itkMacro.h"

#include <cmath>

namespace itk {

/** Voxel spacings (mm) and physical extents (mm per axis) a CT volume may have here. A header with
 *  a spacing of 1e-300 or 1e300 mm would make the coarse grid, the margins in voxels and the
 *  patch tiling loops run without end or overflow; CT spacings are ~0.3..10 mm and extents
 *  under 2 m. */
constexpr double kMinImageSpacingMM = 0.01;
constexpr double kMaxImageSpacingMM = 100.0;
constexpr double kMaxImageExtentMM = 10000.0;

/** Throws an itk::ExceptionObject naming `what`, the axis and the value when a spacing is not in
 *  kMinImageSpacingMM..kMaxImageSpacingMM or an extent (size x spacing) exceeds kMaxImageExtentMM. */
template <typename TImage>
void
VerifyImageGeometry(const TImage * image, const char * what)
{
  const auto spacing = image->GetSpacing();
  const auto size = image->GetLargestPossibleRegion().GetSize();
  for (unsigned int d = 0; d < TImage::ImageDimension; ++d)
  {
    if (!(spacing[d] >= kMinImageSpacingMM && spacing[d] <= kMaxImageSpacingMM))
      itkGenericExceptionMacro(<< what << ": spacing " << spacing[d] << " mm along axis " << d << "; expected "
                               << kMinImageSpacingMM << ".." << kMaxImageSpacingMM
                               << " mm (a damaged or non-CT header?)");
    if (!(static_cast<double>(size[d]) * spacing[d] <= kMaxImageExtentMM))
      itkGenericExceptionMacro(<< what << ": " << size[d] << " voxels of " << spacing[d] << " mm along axis " << d
                               << " span " << static_cast<double>(size[d]) * spacing[d] << " mm; at most "
                               << kMaxImageExtentMM << " mm are segmented");
  }
}

} // namespace itk

#endif
