/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkConvertTorchErrors_h
#define itkConvertTorchErrors_h

#include "itkMacro.h"

#include <c10/util/Exception.h>

#include <exception>
#include <string>
#include <utility>

namespace itk {

/** Runs `work()` and returns what it returns. The one place where errors of LibTorch and of the
 *  agcl core become ITK's, so that no other exception leaves a public ITK API: an
 *  itk::ExceptionObject (ProcessAborted included) passes unchanged; LibTorch's c10::Error
 *  becomes an itk::ExceptionObject "<context>: LibTorch error: <message, without backtrace>";
 *  any other std::exception (the core's std::invalid_argument, a ModelBundleError, a failed
 *  allocation) becomes "<context>: <what>".
 *  \ingroup AGCLSegmentation */
template <typename TWork>
decltype(auto)
ConvertTorchErrors(const std::string & context, TWork && work)
{
  try
  {
    return std::forward<TWork>(work)();
  }
  catch (const ExceptionObject &)
  {
    throw;
  }
  catch (const c10::Error & e)
  {
    itkGenericExceptionMacro(<< context << ": LibTorch error: " << e.what_without_backtrace());
  }
  catch (const std::exception & e)
  {
    itkGenericExceptionMacro(<< context << ": " << e.what());
  }
}

} // namespace itk

/** ConvertTorchErrors for a statement or a braced block (which must not `return`). */
#define agclTorchTryMacro(context, ...) ::itk::ConvertTorchErrors(context, [&]() { __VA_ARGS__; })

#endif
