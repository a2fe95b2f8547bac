/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkImageToTensor_h
#define itkImageToTensor_h

#include "itkImage.h"
#include "itkNumericTraits.h"
#include "itkTensorPixelTraits.h"

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <vector>

namespace itk {

/** \class ImageToTensor
 * \brief Turns an ITK image (2D/3D, scalar or vector pixels, Image or VectorImage) into a LibTorch tensor.
 *
 * Tensor dimensions are the ITK index order reversed: an image of size (X, Y, Z)
 * becomes [Z, Y, X]; pixel components add a channel axis, see TensorComponentAxisEnum.
 *
 * - View() is zero-copy on the CPU: the tensor aliases the image buffer, writes through
 *   it change the image, and the tensor keeps the image's pixel container alive (the
 *   image may be deleted or re-allocated; the view stays valid). A sub-region view is a
 *   strided tensor into the same buffer. Only pixel types with a bit-identical dtype
 *   can be viewed (see TensorComponentTraits; e.g. unsigned short cannot): View() throws
 *   for the others, use Copy().
 * - Copy() always makes a new contiguous tensor on the requested device, converting
 *   pixel types LibTorch lacks (unsigned short -> int32, unsigned int/long -> int64).
 *
 * Every failure (null or empty image, region outside the buffer, unsupported pixel
 * type, LibTorch error) throws itk::ExceptionObject.
 * \ingroup AGCLSegmentation
 */
template <typename TImage>
class ITK_TEMPLATE_EXPORT ImageToTensor
{
public:
  using ImageType = TImage;
  using RegionType = typename TImage::RegionType;
  using PixelType = typename TImage::PixelType;
  using ComponentType = typename NumericTraits<PixelType>::ValueType;
  using TraitsType = TensorComponentTraits<ComponentType>;
  static constexpr unsigned int ImageDimension = TImage::ImageDimension;

  ImageToTensor() = delete;

  /** Whether images of this pixel type can be viewed without a copy. */
  static constexpr bool
  CanView()
  {
    return TraitsType::Supported && TraitsType::Native;
  }

  /** The dtype tensors made from this image type have. */
  static constexpr c10::ScalarType
  GetScalarType()
  {
    return TraitsType::ScalarType;
  }

  /** Zero-copy CPU view of the whole buffered region. */
  static at::Tensor
  View(TImage * image, TensorComponentAxisEnum axis = TensorComponentAxisEnum::Automatic);

  /** Zero-copy CPU view of `region`, which must lie inside the buffered region. */
  static at::Tensor
  View(TImage * image, const RegionType & region, TensorComponentAxisEnum axis = TensorComponentAxisEnum::Automatic);

  /** New contiguous tensor with the buffered region's pixels on `device`. */
  static at::Tensor
  Copy(const TImage *          image,
       const c10::Device &     device = c10::Device(c10::DeviceType::CPU),
       TensorComponentAxisEnum axis = TensorComponentAxisEnum::Automatic);

  /** New contiguous tensor with `region`'s pixels on `device`. */
  static at::Tensor
  Copy(const TImage *          image,
       const RegionType &      region,
       const c10::Device &     device = c10::Device(c10::DeviceType::CPU),
       TensorComponentAxisEnum axis = TensorComponentAxisEnum::Automatic);

  /** The tensor shape for a region of an image with `components` components per pixel. */
  static std::vector<int64_t>
  GetTensorShape(const RegionType & region, unsigned int components, TensorComponentAxisEnum axis);

  /** Whether a tensor of pixels with `components` components per pixel gets a channel axis. */
  static bool
  HasComponentAxis(unsigned int components, TensorComponentAxisEnum axis)
  {
    return axis != TensorComponentAxisEnum::Automatic || components != 1;
  }

private:
  static void
  VerifyImage(const TImage * image, const RegionType & region, const char * caller);
};

} // namespace itk

#ifndef ITK_MANUAL_INSTANTIATION
#  include "itkImageToTensor.hxx"
#endif

#endif
