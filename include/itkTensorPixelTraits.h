/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkTensorPixelTraits_h
#define itkTensorPixelTraits_h

#include "itkMacro.h"

#include <c10/core/ScalarType.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <ostream>
#include <type_traits>

namespace itk {

/** Where the pixel components go in a tensor made from an image
 *  (tensor dimensions are the ITK index order reversed: a 3D image is [Z, Y, X]).
 *  - Automatic: no component axis for scalar pixels; a trailing one ([Z, Y, X, C]) otherwise.
 *  - First: a leading channel axis ([C, Z, Y, X]); size 1 for scalar pixels.
 *  - Last: a trailing channel axis ([Z, Y, X, C]); size 1 for scalar pixels.
 *  \ingroup AGCLSegmentation
 */
enum class TensorComponentAxisEnum : uint8_t
{
  Automatic,
  First,
  Last
};

inline std::ostream &
operator<<(std::ostream & os, TensorComponentAxisEnum axis)
{
  switch (axis)
  {
    case TensorComponentAxisEnum::Automatic:
      return os << "itk::TensorComponentAxisEnum::Automatic";
    case TensorComponentAxisEnum::First:
      return os << "itk::TensorComponentAxisEnum::First";
    case TensorComponentAxisEnum::Last:
      return os << "itk::TensorComponentAxisEnum::Last";
  }
  return os << "itk::TensorComponentAxisEnum::INVALID";
}

/** \class TensorComponentTraits
 * \brief Maps an ITK pixel component type to the LibTorch dtype that stores it.
 *
 * Native types have a dtype with the same bits, so an image buffer can be viewed
 * without copying. LibTorch 1.13 has no unsigned 16/32/64-bit dtypes (2.x has only
 * partial support), so those are widened to the next signed type by an explicit copy:
 * unsigned short -> int32, unsigned int -> int64, unsigned long (long) -> int64
 * (values above 2^63-1 are refused, never wrapped).
 * \ingroup AGCLSegmentation
 */
template <typename T>
struct TensorComponentTraits
{
  static constexpr bool Supported = false;
  static constexpr bool Native = false;
  using StorageType = void;
  static constexpr c10::ScalarType ScalarType = c10::ScalarType::Undefined;
};

#define AGCL_TENSOR_COMPONENT_TRAITS(cppType, storageType, scalarType, isNative)                                       \
  template <>                                                                                                          \
  struct TensorComponentTraits<cppType>                                                                                \
  {                                                                                                                    \
    static constexpr bool Supported = true;                                                                            \
    static constexpr bool Native = isNative;                                                                           \
    using StorageType = storageType;                                                                                   \
    static constexpr c10::ScalarType ScalarType = c10::ScalarType::scalarType;                                         \
  }

AGCL_TENSOR_COMPONENT_TRAITS(bool, bool, Bool, true);
AGCL_TENSOR_COMPONENT_TRAITS(unsigned char, uint8_t, Byte, true);
AGCL_TENSOR_COMPONENT_TRAITS(signed char, int8_t, Char, true);
// Plain char is its own type; its signedness depends on the platform.
template <>
struct TensorComponentTraits<char>
{
  static constexpr bool Supported = true;
  static constexpr bool Native = true;
  using StorageType = std::conditional_t<std::is_signed<char>::value, int8_t, uint8_t>;
  static constexpr c10::ScalarType ScalarType =
    std::is_signed<char>::value ? c10::ScalarType::Char : c10::ScalarType::Byte;
};
AGCL_TENSOR_COMPONENT_TRAITS(short, int16_t, Short, true);
AGCL_TENSOR_COMPONENT_TRAITS(int, int32_t, Int, true);
AGCL_TENSOR_COMPONENT_TRAITS(long, int64_t, Long, sizeof(long) == sizeof(int64_t));
AGCL_TENSOR_COMPONENT_TRAITS(long long, int64_t, Long, sizeof(long long) == sizeof(int64_t));
AGCL_TENSOR_COMPONENT_TRAITS(float, float, Float, true);
AGCL_TENSOR_COMPONENT_TRAITS(double, double, Double, true);
AGCL_TENSOR_COMPONENT_TRAITS(unsigned short, int32_t, Int, false);
AGCL_TENSOR_COMPONENT_TRAITS(unsigned int, int64_t, Long, false);
AGCL_TENSOR_COMPONENT_TRAITS(unsigned long, int64_t, Long, false);
AGCL_TENSOR_COMPONENT_TRAITS(unsigned long long, int64_t, Long, false);

#undef AGCL_TENSOR_COMPONENT_TRAITS

} // namespace itk

#endif
