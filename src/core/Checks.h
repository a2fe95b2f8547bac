/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_Checks_h
#define agcl_Checks_h

// Argument checks of the core (private header). The core has no ITK, so bad input
// raises std::invalid_argument whose message names the argument and what was expected;
// the ITK layer converts it to itk::ExceptionObject.

#include <ATen/core/Tensor.h>

#include <sstream>
#include <stdexcept>
#include <string>

namespace agcl::detail {

inline std::string
ShapeText(const at::Tensor & t)
{
  if (!t.defined())
  {
    return "undefined";
  }
  std::ostringstream os;
  os << t.sizes();
  return os.str();
}

inline void
Require(bool condition, const std::string & where, const std::string & message)
{
  if (!condition)
  {
    throw std::invalid_argument(where + ": " + message);
  }
}

/** Requires a defined floating-point tensor of `dims` dimensions. */
inline void
RequireFloating(const at::Tensor &  t,
                int64_t             dims,
                const std::string & where,
                const std::string & name,
                const std::string & expected)
{
  Require(t.defined(), where, name + " is undefined; expected " + expected);
  Require(t.dim() == dims, where, name + " has shape " + ShapeText(t) + "; expected " + expected);
  Require(at::isFloatingType(t.scalar_type()),
          where,
          name + " has dtype " + std::string(c10::toString(t.scalar_type())) + "; expected a floating-point " +
            expected);
}

/** Requires every element to be finite (one device synchronisation). */
void
RequireFinite(const at::Tensor & t, const std::string & where, const std::string & name);

} // namespace agcl::detail

#endif
