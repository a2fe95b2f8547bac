/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkVerifyFiniteImage_h
#define itkVerifyFiniteImage_h

#include "itkImageRegionConstIteratorWithIndex.h"
#include "itkMacro.h"
#include "itkNumericTraits.h"

#include <cmath>
#include <type_traits>

namespace itk {

/** Throws an itk::ExceptionObject naming the first voxel that is NaN or infinite in the
 *  buffered region of `image` (`what` names the image in the message). Integer images pass
 *  at no cost. A NaN voxel would otherwise flow silently through the networks into a wrong
 *  segmentation. */
template <typename TImage>
void
VerifyFiniteImage(const TImage * image, const char * what)
{
  using ValueType = typename NumericTraits<typename TImage::PixelType>::ValueType;
  if constexpr (std::is_floating_point_v<ValueType> && std::is_same_v<typename TImage::PixelType, ValueType>)
  {
    const auto * buffer = image->GetBufferPointer();
    const auto   count = image->GetBufferedRegion().GetNumberOfPixels();
    for (SizeValueType i = 0; i < count; ++i)
    {
      if (!std::isfinite(buffer[i]))
      {
        const auto index = image->ComputeIndex(static_cast<OffsetValueType>(i));
        itkGenericExceptionMacro(<< what << ": voxel " << index << " is " << buffer[i]
                                 << "; expected finite intensities (NaN or infinite voxels cannot be segmented)");
      }
    }
  }
}

} // namespace itk

#endif
