/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkTensorToImage_h
#define itkTensorToImage_h

#include "itkImageBase.h"
#include "itkNumericTraits.h"
#include "itkTensorPixelTraits.h"

#include <ATen/core/Tensor.h>

namespace itk {

/** \class TensorToImage
 * \brief Copies a LibTorch tensor (on any device) into a new ITK image with the geometry of a reference image.
 *
 * The tensor must have exactly the layout ImageToTensor<TImage> produces: dimensions in
 * reversed ITK index order ([Z, Y, X] for 3D), a channel axis as TensorComponentAxisEnum
 * says, and the dtype of TensorComponentTraits (e.g. int16 for short, int32 for unsigned
 * short). Nothing is cast implicitly: a float tensor handed back as an unsigned char
 * image is an error, so that probabilities are never silently truncated. Widened
 * unsigned types are range-checked on the way back.
 *
 * The new image has the reference's spacing, origin and direction; its largest possible
 * region is the reference's largest possible region, or the given region (a sub-region
 * of it, e.g. a patch), so that physical positions agree with the reference.
 * \ingroup AGCLSegmentation
 */
template <typename TImage>
class ITK_TEMPLATE_EXPORT TensorToImage
{
public:
  using ImageType = TImage;
  using ImagePointer = typename TImage::Pointer;
  using RegionType = typename TImage::RegionType;
  using PixelType = typename TImage::PixelType;
  using ComponentType = typename NumericTraits<PixelType>::ValueType;
  using TraitsType = TensorComponentTraits<ComponentType>;
  static constexpr unsigned int ImageDimension = TImage::ImageDimension;
  using ReferenceType = ImageBase<ImageDimension>;

  TensorToImage() = delete;

  /** Image covering the reference's largest possible region. */
  static ImagePointer
  Convert(const at::Tensor &      tensor,
          const ReferenceType *   reference,
          TensorComponentAxisEnum axis = TensorComponentAxisEnum::Automatic);

  /** Image covering `region` of the reference (inside its largest possible region). */
  static ImagePointer
  Convert(const at::Tensor &      tensor,
          const ReferenceType *   reference,
          const RegionType &      region,
          TensorComponentAxisEnum axis = TensorComponentAxisEnum::Automatic);
};

} // namespace itk

#ifndef ITK_MANUAL_INSTANTIATION
#  include "itkTensorToImage.hxx"
#endif

#endif
