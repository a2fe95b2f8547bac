/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkTensorToImage_hxx
#define itkTensorToImage_hxx

#include "itkTensorToImage.h"
#include "itkConvertTorchErrors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <sstream>
#include <vector>

namespace itk {

template <typename TImage>
auto
TensorToImage<TImage>::Convert(const at::Tensor & tensor, const ReferenceType * reference, TensorComponentAxisEnum axis)
  -> ImagePointer
{
  if (reference == nullptr)
  {
    itkGenericExceptionMacro(<< "TensorToImage::Convert: reference image is null");
  }
  return Convert(tensor, reference, reference->GetLargestPossibleRegion(), axis);
}

template <typename TImage>
auto
TensorToImage<TImage>::Convert(const at::Tensor &      tensor,
                               const ReferenceType *   reference,
                               const RegionType &      region,
                               TensorComponentAxisEnum axis) -> ImagePointer
{
  if constexpr (!TraitsType::Supported)
  {
    itkGenericExceptionMacro(
      << "TensorToImage::Convert: pixel component type '" << typeid(ComponentType).name()
      << "' has no LibTorch dtype; expected bool, a signed or unsigned integer, float or double");
  }
  else
  {
    using StorageType = typename TraitsType::StorageType;
    if (reference == nullptr)
    {
      itkGenericExceptionMacro(<< "TensorToImage::Convert: reference image is null");
    }
    if (!tensor.defined())
    {
      itkGenericExceptionMacro(<< "TensorToImage::Convert: tensor is undefined");
    }
    if (tensor.scalar_type() != TraitsType::ScalarType)
    {
      itkGenericExceptionMacro(<< "TensorToImage::Convert: tensor dtype is " << c10::toString(tensor.scalar_type())
                               << ", expected " << c10::toString(TraitsType::ScalarType)
                               << " for this image's pixel type (cast the tensor explicitly)");
    }
    if (region.GetNumberOfPixels() == 0 || !reference->GetLargestPossibleRegion().IsInside(region))
    {
      itkGenericExceptionMacro(<< "TensorToImage::Convert: region (index " << region.GetIndex() << ", size "
                               << region.GetSize() << ") is empty or not inside the reference's largest region (index "
                               << reference->GetLargestPossibleRegion().GetIndex() << ", size "
                               << reference->GetLargestPossibleRegion().GetSize() << ")");
    }

    // Components: fixed by the pixel type, or (VectorImage) taken from the tensor.
    const unsigned int fixedComponents = NumericTraits<PixelType>::GetLength(PixelType());
    const bool         scalarPixel = std::is_same<PixelType, ComponentType>::value;
    const bool         channel = axis != TensorComponentAxisEnum::Automatic || !scalarPixel;
    const int64_t      expectedDims = ImageDimension + (channel ? 1 : 0);
    const auto         sizeText = [&tensor]() {
      std::ostringstream os;
      os << tensor.sizes();
      return os.str();
    };
    if (tensor.dim() != expectedDims)
    {
      itkGenericExceptionMacro(<< "TensorToImage::Convert: tensor has " << tensor.dim() << " dimensions " << sizeText()
                               << ", expected " << expectedDims << " (" << ImageDimension
                               << " spatial, reversed ITK order" << (channel ? ", plus a channel axis" : "") << ")");
    }
    const int64_t spatialStart = (channel && axis == TensorComponentAxisEnum::First) ? 1 : 0;
    const int64_t channelDim = (axis == TensorComponentAxisEnum::First) ? 0 : expectedDims - 1;
    const int64_t components = channel ? tensor.size(channelDim) : 1;
    if (components <= 0 || (fixedComponents != 0 && components != fixedComponents))
    {
      itkGenericExceptionMacro(<< "TensorToImage::Convert: tensor " << sizeText() << " has " << components
                               << " components per pixel, expected "
                               << (fixedComponents != 0 ? std::to_string(fixedComponents) : std::string("at least 1")));
    }
    for (unsigned int d = 0; d < ImageDimension; ++d)
    {
      const int64_t tensorSize = tensor.size(spatialStart + ImageDimension - 1 - d);
      if (tensorSize != static_cast<int64_t>(region.GetSize(d)))
      {
        itkGenericExceptionMacro(<< "TensorToImage::Convert: tensor " << sizeText()
                                 << " does not match the region size " << region.GetSize()
                                 << " (tensor dimensions are the ITK index order reversed)");
      }
    }

    // Host, channels-last, contiguous.
    at::Tensor host;
    agclTorchTryMacro("TensorToImage::Convert", {
      host = tensor.detach();
      if (channel && axis == TensorComponentAxisEnum::First)
      {
        std::vector<int64_t> order;
        for (int64_t d = 1; d < expectedDims; ++d)
        {
          order.push_back(d);
        }
        order.push_back(0);
        host = host.permute(order);
      }
      // Tensor::to(..., MemoryFormat::Contiguous) can hand back a permuted tensor unchanged
      // (its suggested format is "contiguous" below 4D), so ask for contiguity explicitly.
      host = host.to(c10::Device(c10::DeviceType::CPU)).contiguous();
    });

    ImagePointer image = TImage::New();
    image->SetRegions(region);
    image->SetSpacing(reference->GetSpacing());
    image->SetOrigin(reference->GetOrigin());
    image->SetDirection(reference->GetDirection());
    if (fixedComponents == 0)
    {
      image->SetNumberOfComponentsPerPixel(static_cast<unsigned int>(components));
    }
    image->Allocate();

    const int64_t       count = host.numel();
    const StorageType * src = host.data_ptr<StorageType>();
    auto *              dst = reinterpret_cast<ComponentType *>(image->GetBufferPointer());
    if constexpr (TraitsType::Native)
    {
      std::memcpy(dst, src, static_cast<size_t>(count) * sizeof(ComponentType));
    }
    else
    {
      for (int64_t k = 0; k < count; ++k)
      {
        const StorageType v = src[k];
        if (v < 0 || static_cast<std::make_unsigned_t<StorageType>>(v) > std::numeric_limits<ComponentType>::max())
        {
          itkGenericExceptionMacro(<< "TensorToImage::Convert: tensor value " << v << " at element " << k
                                   << " is outside the pixel type's range [0, "
                                   << std::numeric_limits<ComponentType>::max() << "]");
        }
        dst[k] = static_cast<ComponentType>(v);
      }
    }
    return image;
  }
}

} // namespace itk

#endif
