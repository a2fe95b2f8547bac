/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkImageToTensor_hxx
#define itkImageToTensor_hxx

#include "itkImageToTensor.h"
#include "itkConvertTorchErrors.h"

#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>

#include <limits>
#include <type_traits>

namespace itk {

template <typename TImage>
std::vector<int64_t>
ImageToTensor<TImage>::GetTensorShape(const RegionType & region, unsigned int components, TensorComponentAxisEnum axis)
{
  std::vector<int64_t> shape;
  const bool           channel = HasComponentAxis(components, axis);
  if (channel && axis == TensorComponentAxisEnum::First)
  {
    shape.push_back(components);
  }
  for (int d = static_cast<int>(ImageDimension) - 1; d >= 0; --d)
  {
    shape.push_back(static_cast<int64_t>(region.GetSize(d)));
  }
  if (channel && axis != TensorComponentAxisEnum::First)
  {
    shape.push_back(components);
  }
  return shape;
}

template <typename TImage>
void
ImageToTensor<TImage>::VerifyImage(const TImage * image, const RegionType & region, const char * caller)
{
  if (!TraitsType::Supported)
  {
    itkGenericExceptionMacro(
      << "ImageToTensor::" << caller << ": pixel component type '" << typeid(ComponentType).name()
      << "' has no LibTorch dtype; expected bool, a signed or unsigned integer, float or double");
  }
  if (image == nullptr)
  {
    itkGenericExceptionMacro(<< "ImageToTensor::" << caller << ": image is null");
  }
  const RegionType & buffered = image->GetBufferedRegion();
  if (buffered.GetNumberOfPixels() == 0 || image->GetBufferPointer() == nullptr)
  {
    itkGenericExceptionMacro(<< "ImageToTensor::" << caller << ": image is empty (buffered region " << buffered
                             << "); expected an allocated image with at least one pixel");
  }
  if (image->GetNumberOfComponentsPerPixel() == 0)
  {
    itkGenericExceptionMacro(<< "ImageToTensor::" << caller << ": image has 0 components per pixel");
  }
  if (region.GetNumberOfPixels() == 0)
  {
    itkGenericExceptionMacro(<< "ImageToTensor::" << caller << ": requested region " << region << " is empty");
  }
  if (!buffered.IsInside(region))
  {
    itkGenericExceptionMacro(<< "ImageToTensor::" << caller << ": requested region (index " << region.GetIndex()
                             << ", size " << region.GetSize() << ") is not inside the buffered region (index "
                             << buffered.GetIndex() << ", size " << buffered.GetSize() << ")");
  }
}

template <typename TImage>
at::Tensor
ImageToTensor<TImage>::View(TImage * image, TensorComponentAxisEnum axis)
{
  if (image == nullptr)
  {
    itkGenericExceptionMacro(<< "ImageToTensor::View: image is null");
  }
  return View(image, image->GetBufferedRegion(), axis);
}

template <typename TImage>
at::Tensor
ImageToTensor<TImage>::View(TImage * image, const RegionType & region, TensorComponentAxisEnum axis)
{
  VerifyImage(image, region, "View");
  if constexpr (!CanView())
  {
    itkGenericExceptionMacro(<< "ImageToTensor::View: pixel component type '" << typeid(ComponentType).name()
                             << "' has no bit-identical LibTorch dtype, so it cannot be viewed without a copy; use "
                                "ImageToTensor::Copy(), which converts it to "
                             << c10::toString(TraitsType::ScalarType));
  }
  else
  {
    const unsigned int components = image->GetNumberOfComponentsPerPixel();
    const RegionType & buffered = image->GetBufferedRegion();

    // Strides of the ITK buffer, in components, per ITK axis (x fastest).
    int64_t itkStride[ImageDimension];
    int64_t offset = 0;
    int64_t stride = components;
    for (unsigned int d = 0; d < ImageDimension; ++d)
    {
      itkStride[d] = stride;
      offset += (region.GetIndex(d) - buffered.GetIndex(d)) * stride;
      stride *= static_cast<int64_t>(buffered.GetSize(d));
    }
    std::vector<int64_t> sizes;
    std::vector<int64_t> strides;
    for (int d = static_cast<int>(ImageDimension) - 1; d >= 0; --d)
    {
      sizes.push_back(static_cast<int64_t>(region.GetSize(d)));
      strides.push_back(itkStride[d]);
    }
    const bool channel = HasComponentAxis(components, axis);
    if (channel)
    {
      sizes.push_back(components);
      strides.push_back(1);
    }

    using StorageType = typename TraitsType::StorageType;
    auto * base =
      reinterpret_cast<StorageType *>(const_cast<void *>(static_cast<const void *>(image->GetBufferPointer())));
    // The deleter holds a reference to the pixel container: the buffer lives as long as the tensor.
    // (GetPixelContainer() returns a raw pointer: take a SmartPointer explicitly.)
    typename TImage::PixelContainerConstPointer container = image->GetPixelContainer();

    at::Tensor view;
    agclTorchTryMacro("ImageToTensor::View",
                      view = at::from_blob(
                        base + offset,
                        sizes,
                        strides,
                        [container](void *) {},
                        at::TensorOptions().dtype(TraitsType::ScalarType).device(c10::DeviceType::CPU)));
    if (channel && axis == TensorComponentAxisEnum::First)
    {
      std::vector<int64_t> order{ static_cast<int64_t>(ImageDimension) };
      for (int64_t d = 0; d < static_cast<int64_t>(ImageDimension); ++d)
      {
        order.push_back(d);
      }
      agclTorchTryMacro("ImageToTensor::View", view = view.permute(order));
    }
    return view;
  }
}

template <typename TImage>
at::Tensor
ImageToTensor<TImage>::Copy(const TImage * image, const c10::Device & device, TensorComponentAxisEnum axis)
{
  if (image == nullptr)
  {
    itkGenericExceptionMacro(<< "ImageToTensor::Copy: image is null");
  }
  return Copy(image, image->GetBufferedRegion(), device, axis);
}

template <typename TImage>
at::Tensor
ImageToTensor<TImage>::Copy(const TImage *          image,
                            const RegionType &      region,
                            const c10::Device &     device,
                            TensorComponentAxisEnum axis)
{
  VerifyImage(image, region, "Copy");
  at::Tensor result;
  if constexpr (CanView())
  {
    const at::Tensor view = View(const_cast<TImage *>(image), region, axis);
    agclTorchTryMacro(
      "ImageToTensor::Copy",
      result =
        view.to(device, TraitsType::ScalarType, /*non_blocking=*/false, /*copy=*/true, at::MemoryFormat::Contiguous)
          .contiguous());
    return result;
  }
  else if constexpr (TraitsType::Supported)
  {
    using StorageType = typename TraitsType::StorageType;
    const unsigned int components = image->GetNumberOfComponentsPerPixel();
    const RegionType & buffered = image->GetBufferedRegion();
    // Channels-last host tensor first (the buffer's own order), then permute and move.
    const std::vector<int64_t> shape = GetTensorShape(region, components, TensorComponentAxisEnum::Last);
    at::Tensor                 host;
    agclTorchTryMacro("ImageToTensor::Copy",
                      host = at::empty(shape, at::TensorOptions().dtype(TraitsType::ScalarType)));
    StorageType * out = host.data_ptr<StorageType>();
    const auto *  in = reinterpret_cast<const ComponentType *>(image->GetBufferPointer());

    // Walk the region line by line (x rows), converting each component.
    const int64_t rowLength = static_cast<int64_t>(region.GetSize(0)) * components;
    int64_t       lineCount = 1;
    for (unsigned int d = 1; d < ImageDimension; ++d)
    {
      lineCount *= static_cast<int64_t>(region.GetSize(d));
    }
    std::vector<int64_t> position(ImageDimension, 0); // position within the region, axes 1..D-1
    for (int64_t line = 0; line < lineCount; ++line)
    {
      int64_t offset = 0;
      int64_t stride = components;
      for (unsigned int d = 0; d < ImageDimension; ++d)
      {
        offset += (region.GetIndex(d) - buffered.GetIndex(d) + position[d]) * stride;
        stride *= static_cast<int64_t>(buffered.GetSize(d));
      }
      const ComponentType * src = in + offset;
      for (int64_t k = 0; k < rowLength; ++k)
      {
        if constexpr (sizeof(ComponentType) >= sizeof(StorageType) && std::is_unsigned<ComponentType>::value)
        {
          if (src[k] > static_cast<ComponentType>(std::numeric_limits<StorageType>::max()))
          {
            itkGenericExceptionMacro(<< "ImageToTensor::Copy: pixel value " << src[k] << " does not fit "
                                     << c10::toString(TraitsType::ScalarType)
                                     << " (LibTorch has no unsigned 64-bit dtype); expected values up to "
                                     << std::numeric_limits<StorageType>::max());
          }
        }
        *out++ = static_cast<StorageType>(src[k]);
      }
      for (unsigned int d = 1; d < ImageDimension; ++d)
      {
        if (++position[d] < static_cast<int64_t>(region.GetSize(d)))
        {
          break;
        }
        position[d] = 0;
      }
    }
    if (HasComponentAxis(components, axis) && axis == TensorComponentAxisEnum::First)
    {
      std::vector<int64_t> order{ static_cast<int64_t>(ImageDimension) };
      for (int64_t d = 0; d < static_cast<int64_t>(ImageDimension); ++d)
      {
        order.push_back(d);
      }
      agclTorchTryMacro("ImageToTensor::Copy", host = host.permute(order));
    }
    else if (!HasComponentAxis(components, axis))
    {
      agclTorchTryMacro("ImageToTensor::Copy", host = host.squeeze(-1));
    }
    agclTorchTryMacro("ImageToTensor::Copy",
                      // Tensor::to() may return a permuted tensor unchanged even when asked for a
                      // contiguous one (suggest_memory_format() is "contiguous" below 4D): be explicit.
                      result = host.contiguous()
                                 .to(device,
                                     TraitsType::ScalarType,
                                     /*non_blocking=*/false,
                                     /*copy=*/false)
                                 .contiguous());
    return result;
  }
  return result; // not reached: VerifyImage throws for unsupported types
}

} // namespace itk

#endif
